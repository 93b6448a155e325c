"""Built-in PR providers: each module registers one through ``chump_register_pr_providers``."""
