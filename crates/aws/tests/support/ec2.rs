//! EC2 through its Query API against moto, for the tests that deploy the real networking stacks (the deploy
//! engine's in this crate, the `lifeboat` binary's in lifeboat-cli). No EC2 SDK: these few calls do not
//! justify compiling one more service crate.

/// One EC2 Query API call; returns the XML body. moto does not verify signatures; the credential scope of the
/// Authorization header tells it the region.
pub async fn ec2(endpoint: &str, region: &str, params: &[(&str, &str)]) -> String {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/ec2/aws4_request, SignedHeaders=host, Signature=0"
    );
    let mut form: Vec<(&str, &str)> = vec![("Version", "2016-11-15")];
    form.extend_from_slice(params);
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("Authorization", auth)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("EC2 endpoint answers");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "EC2 {params:?} in {region}: HTTP {status}: {text}"
    );
    text
}

/// Every value of `<tag>...</tag>` in an XML body, in order.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split(&close).next().map(str::to_string))
        .collect()
}

/// moto's CloudFormation has no delete handler for NAT gateways, VPC endpoints, internet gateways and route
/// tables: deleting a stack leaves them, and the VPC then fails with DependencyViolation. CloudFormation on
/// AWS deletes them itself; here they are removed through the EC2 API before the destroy under test.
pub async fn remove_what_moto_cannot_delete(endpoint: &str, region: &str, vpc: &str) {
    let by_vpc = [("Filter.1.Name", "vpc-id"), ("Filter.1.Value.1", vpc)];
    let nats = ec2(
        endpoint,
        region,
        &[&[("Action", "DescribeNatGateways")][..], &by_vpc].concat(),
    )
    .await;
    for id in xml_values(&nats, "natGatewayId") {
        ec2(
            endpoint,
            region,
            &[("Action", "DeleteNatGateway"), ("NatGatewayId", &id)],
        )
        .await;
    }
    let endpoints = ec2(
        endpoint,
        region,
        &[&[("Action", "DescribeVpcEndpoints")][..], &by_vpc].concat(),
    )
    .await;
    for id in xml_values(&endpoints, "vpcEndpointId") {
        ec2(
            endpoint,
            region,
            &[("Action", "DeleteVpcEndpoints"), ("VpcEndpointId.1", &id)],
        )
        .await;
    }
    let igws = ec2(
        endpoint,
        region,
        &[
            ("Action", "DescribeInternetGateways"),
            ("Filter.1.Name", "attachment.vpc-id"),
            ("Filter.1.Value.1", vpc),
        ],
    )
    .await;
    for id in xml_values(&igws, "internetGatewayId") {
        ec2(
            endpoint,
            region,
            &[
                ("Action", "DetachInternetGateway"),
                ("InternetGatewayId", &id),
                ("VpcId", vpc),
            ],
        )
        .await;
        ec2(
            endpoint,
            region,
            &[
                ("Action", "DeleteInternetGateway"),
                ("InternetGatewayId", &id),
            ],
        )
        .await;
    }
    let tables = ec2(
        endpoint,
        region,
        &[&[("Action", "DescribeRouteTables")][..], &by_vpc].concat(),
    )
    .await;
    for table in tables
        .split("<item>")
        .filter(|t| t.contains("<routeTableId>"))
    {
        let is_main = table.contains("<main>true</main>");
        for association in xml_values(table, "routeTableAssociationId") {
            if !is_main {
                ec2(
                    endpoint,
                    region,
                    &[
                        ("Action", "DisassociateRouteTable"),
                        ("AssociationId", &association),
                    ],
                )
                .await;
            }
        }
    }
    for table in xml_values(&tables, "routeTableId") {
        let described = ec2(
            endpoint,
            region,
            &[
                ("Action", "DescribeRouteTables"),
                ("RouteTableId.1", &table),
            ],
        )
        .await;
        if !described.contains("<main>true</main>") {
            ec2(
                endpoint,
                region,
                &[("Action", "DeleteRouteTable"), ("RouteTableId", &table)],
            )
            .await;
        }
    }
    let enis = ec2(
        endpoint,
        region,
        &[&[("Action", "DescribeNetworkInterfaces")][..], &by_vpc].concat(),
    )
    .await;
    for id in xml_values(&enis, "networkInterfaceId") {
        ec2(
            endpoint,
            region,
            &[
                ("Action", "DeleteNetworkInterface"),
                ("NetworkInterfaceId", &id),
            ],
        )
        .await;
    }
}

/// Whether `vpc_id` exists in `region`.
pub async fn vpc_exists(endpoint: &str, region: &str, vpc_id: &str) -> bool {
    let xml = ec2(
        endpoint,
        region,
        &[
            ("Action", "DescribeVpcs"),
            ("Filter.1.Name", "vpc-id"),
            ("Filter.1.Value.1", vpc_id),
        ],
    )
    .await;
    xml_values(&xml, "vpcId").iter().any(|v| v == vpc_id)
}
