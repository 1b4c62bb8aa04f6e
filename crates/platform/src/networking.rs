//! Networking, per region: a VPC across the configured AZs with public, app (private) and database
//! (isolated) subnets, internet and NAT gateways, route tables, the security groups every other component
//! uses, gateway endpoints (S3, DynamoDB), interface endpoints (SSM, Secrets Manager) and VPC flow logs.
//! The primary stack also holds the public hosted zone for the domain (Route 53 is global).

use std::net::Ipv4Addr;

use lifeboat_cfn::resources::{ec2, iam, route53};
use lifeboat_cfn::{Expr, get_att, r, select, sub};
use lifeboat_config::{Config, NatGateways, Role};
use serde_json::json;

use crate::util::{Stack, allow, assume_role, az_letter, inline_policy, join_list, log_group};

pub const COMPONENT: &str = "networking";

/// The subnet tiers, in the order their ranges are carved from the VPC range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Load balancer and NAT gateways; routes to the internet gateway.
    Public,
    /// Lambda functions; outbound through NAT.
    App,
    /// Aurora; no route out of the VPC.
    Data,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Public, Tier::App, Tier::Data];

    fn name(self) -> &'static str {
        match self {
            Tier::Public => "Public",
            Tier::App => "App",
            Tier::Data => "Data",
        }
    }
}

/// The CIDR of a subnet: the VPC range cut into sixteenths, four per tier, one per AZ.
pub fn subnet_cidr(vpc_cidr: &str, tier: Tier, az: usize) -> Option<String> {
    let (addr, len) = vpc_cidr.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    let sub_len = len + 4;
    if sub_len > 28 || az >= 4 {
        return None;
    }
    let index = (tier as u32) * 4 + u32::try_from(az).ok()?;
    let base = u32::from(addr) + (index << (32 - sub_len));
    Some(format!("{}/{sub_len}", Ipv4Addr::from(base)))
}

fn subnet_id(tier: Tier, az: usize) -> String {
    format!("{}Subnet{}", tier.name(), az_letter(az))
}

pub fn build(config: &Config, role: Role) -> Stack {
    let mut s = Stack::new(
        config,
        COMPONENT,
        role,
        "VPC, subnets, gateways, security groups, endpoints, flow logs",
    );
    let names = config.names();
    let azs = usize::from(config.network.az_count);
    let vpc_cidr = config.cidr(role).to_string();

    s.template.add(
        "Vpc",
        ec2::Vpc {
            cidr_block: vpc_cidr.clone().into(),
            enable_dns_hostnames: Some(true.into()),
            enable_dns_support: Some(true.into()),
        },
    );

    for tier in Tier::ALL {
        for az in 0..azs {
            // Validated config: the range is /16../20, so every subnet range exists.
            let cidr = subnet_cidr(&vpc_cidr, tier, az).unwrap_or_default();
            s.template.add(
                &subnet_id(tier, az),
                ec2::Subnet {
                    vpc_id: r("Vpc"),
                    cidr_block: cidr.into(),
                    availability_zone: Some(select(u32::try_from(az).unwrap_or(0), Expr::GetAzs)),
                    map_public_ip_on_launch: Some(false.into()),
                },
            );
        }
    }

    // Internet access for the public tier.
    s.template.add("InternetGateway", ec2::InternetGateway {});
    s.template.add(
        "InternetGatewayAttachment",
        ec2::VpcGatewayAttachment {
            vpc_id: r("Vpc"),
            internet_gateway_id: Some(r("InternetGateway")),
        },
    );
    s.template
        .add("PublicRouteTable", ec2::RouteTable { vpc_id: r("Vpc") });
    s.template
        .add(
            "PublicDefaultRoute",
            ec2::Route {
                route_table_id: r("PublicRouteTable"),
                destination_cidr_block: Some("0.0.0.0/0".into()),
                gateway_id: Some(r("InternetGateway")),
                nat_gateway_id: None,
            },
        )
        .depends_on("InternetGatewayAttachment");
    for az in 0..azs {
        s.template.add(
            &format!("PublicSubnet{}RouteTableAssociation", az_letter(az)),
            ec2::SubnetRouteTableAssociation {
                subnet_id: r(subnet_id(Tier::Public, az)),
                route_table_id: r("PublicRouteTable"),
            },
        );
    }

    // NAT for the app tier: one per region, or one per AZ so losing an AZ keeps the others connected.
    let nat_count = match config.network.nat_gateways {
        NatGateways::Single => 1,
        NatGateways::PerAz => azs,
    };
    for az in 0..nat_count {
        let letter = az_letter(az);
        s.template
            .add(
                &format!("NatEip{letter}"),
                ec2::Eip {
                    domain: Some("vpc".into()),
                },
            )
            .depends_on("InternetGatewayAttachment");
        s.template.add(
            &format!("NatGateway{letter}"),
            ec2::NatGateway {
                subnet_id: r(subnet_id(Tier::Public, az)),
                allocation_id: Some(get_att(format!("NatEip{letter}"), "AllocationId")),
            },
        );
    }
    let mut private_route_tables = Vec::new();
    for az in 0..azs {
        let letter = az_letter(az);
        let table = format!("AppRouteTable{letter}");
        s.template.add(&table, ec2::RouteTable { vpc_id: r("Vpc") });
        let nat = if nat_count == 1 { 'A' } else { letter };
        s.template.add(
            &format!("AppDefaultRoute{letter}"),
            ec2::Route {
                route_table_id: r(&table),
                destination_cidr_block: Some("0.0.0.0/0".into()),
                gateway_id: None,
                nat_gateway_id: Some(r(format!("NatGateway{nat}"))),
            },
        );
        s.template.add(
            &format!("AppSubnet{letter}RouteTableAssociation"),
            ec2::SubnetRouteTableAssociation {
                subnet_id: r(subnet_id(Tier::App, az)),
                route_table_id: r(&table),
            },
        );
        private_route_tables.push(r(&table));
    }
    // The database tier has no default route at all: nothing in it can reach or be reached from outside.
    s.template
        .add("DataRouteTable", ec2::RouteTable { vpc_id: r("Vpc") });
    for az in 0..azs {
        s.template.add(
            &format!("DataSubnet{}RouteTableAssociation", az_letter(az)),
            ec2::SubnetRouteTableAssociation {
                subnet_id: r(subnet_id(Tier::Data, az)),
                route_table_id: r("DataRouteTable"),
            },
        );
    }
    private_route_tables.push(r("DataRouteTable"));

    security_groups(&mut s, &vpc_cidr);
    endpoints(&mut s, azs, private_route_tables);
    flow_logs(&mut s, &names.flow_log_group());

    if role == Role::Primary {
        s.template
            .add(
                "HostedZone",
                route53::HostedZone {
                    name: config.dns.domain.clone().into(),
                    hosted_zone_config: Some(Expr::json(
                        json!({ "Comment": format!("{} (lifeboat)", names.prefix()) }),
                    )),
                },
            )
            // Kept when the stack is deleted (the registrar delegates to its name servers), but deleted when the
            // create that made it rolls back: otherwise each failed first deploy left another orphan zone with
            // different name servers.
            .stateful(lifeboat_cfn::DeletionPolicy::RetainExceptOnCreate);
        s.output(
            "HostedZoneId",
            r("HostedZone"),
            "Public hosted zone of the domain",
        );
        s.output(
            "HostedZoneNameServers",
            Expr::json(json!({ "Fn::Join": [",", get_att("HostedZone", "NameServers")] })),
            "Name servers to delegate the domain to",
        );
    }

    let subnets = |tier| join_list((0..azs).map(|az| r(subnet_id(tier, az))).collect());
    s.output("VpcId", r("Vpc"), "VPC id");
    s.output(
        "PublicSubnetIds",
        subnets(Tier::Public),
        "Public subnets (load balancer), comma-separated",
    );
    s.output(
        "AppSubnetIds",
        subnets(Tier::App),
        "App subnets (Lambda), comma-separated",
    );
    s.output(
        "DataSubnetIds",
        subnets(Tier::Data),
        "Isolated database subnets, comma-separated",
    );
    s.output(
        "AlbSecurityGroupId",
        r("AlbSecurityGroup"),
        "Security group of the load balancer",
    );
    s.output(
        "AppSecurityGroupId",
        r("AppSecurityGroup"),
        "Security group of the storefront functions",
    );
    s.output(
        "DatabaseSecurityGroupId",
        r("DatabaseSecurityGroup"),
        "Security group of the Aurora cluster",
    );
    s.output(
        "DrAutomationSecurityGroupId",
        r("DrAutomationSecurityGroup"),
        "Security group of the DR automation function",
    );
    s
}

fn security_groups(s: &mut Stack, vpc_cidr: &str) {
    let group = |description: &str| ec2::SecurityGroup {
        group_description: description.into(),
        vpc_id: Some(r("Vpc")),
        security_group_ingress: None,
        security_group_egress: None,
    };
    s.template.add(
        "AlbSecurityGroup",
        group("Load balancer: HTTPS from the internet, HTTP only to redirect"),
    );
    s.template.add(
        "AppSecurityGroup",
        group("Storefront functions: reachable only from the load balancer"),
    );
    s.template.add(
        "DrAutomationSecurityGroup",
        group("DR automation function: no inbound traffic"),
    );
    s.template.add(
        "DatabaseSecurityGroup",
        group("Aurora: MySQL only from the storefront and the DR automation"),
    );
    s.template.add(
        "EndpointSecurityGroup",
        group("Interface endpoints: HTTPS from inside the VPC"),
    );

    let ingress = |group: &str, port: u16, description: &str| ec2::SecurityGroupIngress {
        group_id: r(group),
        ip_protocol: "tcp".into(),
        from_port: Some(port.into()),
        to_port: Some(port.into()),
        cidr_ip: None,
        source_security_group_id: None,
        description: Some(description.into()),
    };
    s.template.add(
        "AlbIngressHttps",
        ec2::SecurityGroupIngress {
            cidr_ip: Some("0.0.0.0/0".into()),
            ..ingress("AlbSecurityGroup", 443, "HTTPS from the internet")
        },
    );
    s.template.add(
        "AlbIngressHttp",
        ec2::SecurityGroupIngress {
            cidr_ip: Some("0.0.0.0/0".into()),
            ..ingress(
                "AlbSecurityGroup",
                80,
                "HTTP from the internet (redirected to HTTPS when a certificate is set)",
            )
        },
    );
    // Lambda targets are invoked through the Lambda API, not over the network; this rule is the only way in
    // for a container target that may replace them.
    s.template.add(
        "AppIngressFromAlb",
        ec2::SecurityGroupIngress {
            source_security_group_id: Some(r("AlbSecurityGroup")),
            ..ingress(
                "AppSecurityGroup",
                8080,
                "Storefront port, from the load balancer only",
            )
        },
    );
    s.template.add(
        "DatabaseIngressFromApp",
        ec2::SecurityGroupIngress {
            source_security_group_id: Some(r("AppSecurityGroup")),
            ..ingress("DatabaseSecurityGroup", 3306, "MySQL from the storefront")
        },
    );
    // No path from the DR automation to the database: it changes roles through the RDS API and never
    // opens a MySQL connection.
    s.template.add(
        "EndpointIngressFromVpc",
        ec2::SecurityGroupIngress {
            cidr_ip: Some(vpc_cidr.into()),
            ..ingress("EndpointSecurityGroup", 443, "HTTPS from the VPC")
        },
    );
}

fn endpoints(s: &mut Stack, azs: usize, route_tables: Vec<Expr>) {
    for (id, service) in [
        ("S3GatewayEndpoint", "s3"),
        ("DynamoDbGatewayEndpoint", "dynamodb"),
    ] {
        s.template.add(
            id,
            ec2::VpcEndpoint {
                vpc_id: r("Vpc"),
                service_name: Some(sub(format!("com.amazonaws.${{AWS::Region}}.{service}"))),
                vpc_endpoint_type: Some("Gateway".into()),
                route_table_ids: Some(Expr::List(route_tables.clone())),
                ..Default::default()
            },
        );
    }
    let app_subnets: Vec<Expr> = (0..azs).map(|az| r(subnet_id(Tier::App, az))).collect();
    for (id, service) in [
        ("SsmEndpoint", "ssm"),
        ("SecretsManagerEndpoint", "secretsmanager"),
    ] {
        s.template.add(
            id,
            ec2::VpcEndpoint {
                vpc_id: r("Vpc"),
                service_name: Some(sub(format!("com.amazonaws.${{AWS::Region}}.{service}"))),
                vpc_endpoint_type: Some("Interface".into()),
                subnet_ids: Some(Expr::List(app_subnets.clone())),
                security_group_ids: Some(Expr::list([r("EndpointSecurityGroup")])),
                private_dns_enabled: Some(true.into()),
                ..Default::default()
            },
        );
    }
}

fn flow_logs(s: &mut Stack, group_name: &str) {
    let group_arn = log_group(s, "FlowLogGroup", group_name);
    s.template.add(
        "FlowLogRole",
        iam::Role {
            assume_role_policy_document: assume_role("vpc-flow-logs.amazonaws.com"),
            description: Some("Lets VPC flow logs write to their log group".into()),
            policies: Some(Expr::json(json!([inline_policy(
                "write-flow-logs",
                vec![
                    allow(
                        &[
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "logs:DescribeLogStreams"
                        ],
                        vec![
                            group_arn.clone(),
                            lifeboat_cfn::join("", vec![group_arn, ":*".into()])
                        ]
                    ),
                    // The delivery service checks that the group exists; listing groups has no resource scoping.
                    allow(&["logs:DescribeLogGroups"], vec!["*".into()]),
                ]
            )]))),
            managed_policy_arns: None,
        },
    );
    s.template.add(
        "FlowLog",
        ec2::FlowLog {
            resource_id: r("Vpc"),
            resource_type: "VPC".into(),
            traffic_type: Some("ALL".into()),
            log_destination_type: Some("cloud-watch-logs".into()),
            log_group_name: Some(r("FlowLogGroup")),
            deliver_logs_permission_arn: Some(get_att("FlowLogRole", "Arn")),
            max_aggregation_interval: Some(60.into()),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_carved_without_overlap() {
        assert_eq!(
            subnet_cidr("10.10.0.0/16", Tier::Public, 0).unwrap(),
            "10.10.0.0/20"
        );
        assert_eq!(
            subnet_cidr("10.10.0.0/16", Tier::App, 1).unwrap(),
            "10.10.80.0/20"
        );
        assert_eq!(
            subnet_cidr("10.10.0.0/16", Tier::Data, 2).unwrap(),
            "10.10.160.0/20"
        );
        assert_eq!(
            subnet_cidr("10.20.16.0/20", Tier::Data, 2).unwrap(),
            "10.20.26.0/24"
        );
        assert_eq!(subnet_cidr("10.10.0.0/16", Tier::Data, 4), None);
    }
}
