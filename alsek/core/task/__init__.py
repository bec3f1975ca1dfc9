"""Tasks: functions whose calls become messages, run by workers."""

from alsek.core.task.arguments import expects_message
from alsek.core.task.asyncio import AsyncTask, AsyncTriggerTask
from alsek.core.task.base import BaseTask
from alsek.core.task.callbacks import build_callback_message, parse_callback
from alsek.core.task.decorator import task
from alsek.core.task.sync import Task, TriggerTask
from alsek.core.task.triggers import TriggerTaskMixin

__all__ = [
    "AsyncTask",
    "AsyncTriggerTask",
    "BaseTask",
    "Task",
    "TriggerTask",
    "TriggerTaskMixin",
    "build_callback_message",
    "expects_message",
    "parse_callback",
    "task",
]
