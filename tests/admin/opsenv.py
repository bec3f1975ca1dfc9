"""Where ``opswork`` finds its Redis: environment variables the tests set (and pools inherit)."""

URL_VAR = "ALSEK_OPS_URL"
NAMESPACE_VAR = "ALSEK_OPS_NS"
