"""Built-in reflection sinks: each module registers one through ``chump_register_sinks``."""
