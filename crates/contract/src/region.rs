//! The two regions of an environment, as every crate asks about them.

/// The pair of regions, borrowed from whichever settings hold them (the config, the DR settings, the AWS
/// topology, the local runtime's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionPair<'a> {
    pub primary: &'a str,
    pub standby: &'a str,
}

impl<'a> RegionPair<'a> {
    pub fn new(primary: &'a str, standby: &'a str) -> Self {
        RegionPair { primary, standby }
    }

    /// The region of the pair that is not `region`, or `None` when `region` is neither.
    pub fn other_region(&self, region: &str) -> Option<&'a str> {
        if region == self.primary {
            Some(self.standby)
        } else if region == self.standby {
            Some(self.primary)
        } else {
            None
        }
    }

    pub fn contains(&self, region: &str) -> bool {
        self.other_region(region).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_region_names_the_other_and_a_stranger_names_none() {
        let pair = RegionPair::new("us-east-1", "us-west-2");
        assert_eq!(pair.other_region("us-east-1"), Some("us-west-2"));
        assert_eq!(pair.other_region("us-west-2"), Some("us-east-1"));
        assert_eq!(pair.other_region("eu-west-1"), None);
        assert!(pair.contains("us-west-2") && !pair.contains("eu-west-1"));
    }
}
