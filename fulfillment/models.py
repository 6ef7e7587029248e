"""The project package keeps no tables of its own; this module lets Django treat it as an app with models (post_migrate)."""
