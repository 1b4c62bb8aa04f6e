//! A small typed CloudFormation model: templates, parameters, conditions, resources, outputs and intrinsic functions, rendered deterministically.
