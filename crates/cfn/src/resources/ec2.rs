//! Amazon VPC and EC2 networking.

use crate::Expr;

resource!(Vpc = "AWS::EC2::VPC" {
    cidr_block: Expr,
    enable_dns_hostnames: Option<Expr>,
    enable_dns_support: Option<Expr>,
});

resource!(Subnet = "AWS::EC2::Subnet" {
    vpc_id: Expr,
    cidr_block: Expr,
    availability_zone: Option<Expr>,
    map_public_ip_on_launch: Option<Expr>,
});

resource!(InternetGateway = "AWS::EC2::InternetGateway" {});

resource!(VpcGatewayAttachment = "AWS::EC2::VPCGatewayAttachment" {
    vpc_id: Expr,
    internet_gateway_id: Option<Expr>,
});

resource!(Eip = "AWS::EC2::EIP" {
    domain: Option<Expr>,
});

resource!(NatGateway = "AWS::EC2::NatGateway" {
    subnet_id: Expr,
    allocation_id: Option<Expr>,
});

resource!(RouteTable = "AWS::EC2::RouteTable" {
    vpc_id: Expr,
});

resource!(Route = "AWS::EC2::Route" {
    route_table_id: Expr,
    destination_cidr_block: Option<Expr>,
    gateway_id: Option<Expr>,
    nat_gateway_id: Option<Expr>,
});

resource!(SubnetRouteTableAssociation = "AWS::EC2::SubnetRouteTableAssociation" {
    subnet_id: Expr,
    route_table_id: Expr,
});

resource!(SecurityGroup = "AWS::EC2::SecurityGroup" {
    group_description: Expr,
    vpc_id: Option<Expr>,
    /// Inline rules; lifeboat adds rules as separate resources so groups can refer to each other.
    security_group_ingress: Option<Expr>,
    security_group_egress: Option<Expr>,
});

resource!(SecurityGroupIngress = "AWS::EC2::SecurityGroupIngress" {
    group_id: Expr,
    ip_protocol: Expr,
    from_port: Option<Expr>,
    to_port: Option<Expr>,
    cidr_ip: Option<Expr>,
    source_security_group_id: Option<Expr>,
    description: Option<Expr>,
});

resource!(SecurityGroupEgress = "AWS::EC2::SecurityGroupEgress" {
    group_id: Expr,
    ip_protocol: Expr,
    from_port: Option<Expr>,
    to_port: Option<Expr>,
    cidr_ip: Option<Expr>,
    destination_security_group_id: Option<Expr>,
    destination_prefix_list_id: Option<Expr>,
    description: Option<Expr>,
});

resource!(VpcEndpoint = "AWS::EC2::VPCEndpoint" {
    vpc_id: Expr,
    service_name: Option<Expr>,
    vpc_endpoint_type: Option<Expr>,
    route_table_ids: Option<Expr>,
    subnet_ids: Option<Expr>,
    security_group_ids: Option<Expr>,
    private_dns_enabled: Option<Expr>,
    policy_document: Option<Expr>,
});

resource!(FlowLog = "AWS::EC2::FlowLog" {
    resource_id: Expr,
    resource_type: Expr,
    traffic_type: Option<Expr>,
    log_destination_type: Option<Expr>,
    log_group_name: Option<Expr>,
    deliver_logs_permission_arn: Option<Expr>,
    max_aggregation_interval: Option<Expr>,
});
