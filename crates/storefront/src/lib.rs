//! The storefront: the e-commerce service the platform protects.
