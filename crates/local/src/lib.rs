//! The local two-region runtime (MariaDB replication, a proxy as front door, storefront instances) and drills.
