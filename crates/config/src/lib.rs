//! Configuration of a lifeboat environment: lifeboat.toml, its defaults and validation. Pure: no I/O beyond what the caller hands in.
