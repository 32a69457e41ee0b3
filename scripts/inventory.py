#!/usr/bin/env python3
"""What an environment has on an AWS endpoint, listed per service by name prefix (boto3 read-backs):

    inventory.py PREFIX            one line per resource: <service> <name>
    inventory.py PREFIX --empty    the same, and exit 1 if anything is listed
    inventory.py PREFIX --present  exit 1 unless every service lists something

PREFIX is <project>-<environment> (books-staging). The rehearsal (scripts/rehearsal) uses it to
show that a destroyed environment left nothing behind, and that the other one is intact.
"""

from __future__ import annotations

import argparse
import sys

import boto3


def paginate(client, operation: str, key: str, **kwargs) -> list:
    items = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def inventory(prefix: str) -> dict[str, list[str]]:
    def named(names):
        return sorted(n for n in names if n.startswith(prefix))

    apigw = boto3.client("apigateway")
    logs = boto3.client("logs")
    log_prefix = "/" + prefix.replace("-", "/", 1)
    return {
        "ecr": named(r["repositoryName"] for r in paginate(boto3.client("ecr"), "describe_repositories", "repositories")),
        "dynamodb": named(paginate(boto3.client("dynamodb"), "list_tables", "TableNames")),
        "lambda": named(f["FunctionName"] for f in paginate(boto3.client("lambda"), "list_functions", "Functions")),
        "iam": named(r["RoleName"] for r in paginate(boto3.client("iam"), "list_roles", "Roles")),
        "apigateway": named(a["name"] for a in paginate(apigw, "get_rest_apis", "items"))
        + named(k["name"] for k in paginate(apigw, "get_api_keys", "items"))
        + named(p["name"] for p in paginate(apigw, "get_usage_plans", "items")),
        "logs": sorted(
            g["logGroupName"]
            for g in paginate(logs, "describe_log_groups", "logGroups")
            if g["logGroupName"].startswith(log_prefix) or prefix in g["logGroupName"]
        ),
        "cloudwatch": named(a["AlarmName"] for a in paginate(boto3.client("cloudwatch"), "describe_alarms", "MetricAlarms"))
        + named(d["DashboardName"] for d in paginate(boto3.client("cloudwatch"), "list_dashboards", "DashboardEntries")),
        "sns": named(t["TopicArn"].rsplit(":", 1)[1] for t in paginate(boto3.client("sns"), "list_topics", "Topics")),
        "sqs": named(url.rsplit("/", 1)[1] for url in boto3.client("sqs").list_queues().get("QueueUrls", [])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefix")
    check = parser.add_mutually_exclusive_group()
    check.add_argument("--empty", action="store_true")
    check.add_argument("--present", action="store_true")
    args = parser.parse_args()
    found = inventory(args.prefix)
    for service, names in found.items():
        print(f"  {service:<11} {len(names):>3}  {' '.join(names)}")
    if args.empty and any(found.values()):
        sys.exit(f"error: {args.prefix} still has resources (above)")
    if args.present and not all(found.values()):
        missing = [service for service, names in found.items() if not names]
        sys.exit(f"error: {args.prefix} has nothing in {', '.join(missing)}")


if __name__ == "__main__":
    main()
