#!/bin/sh
# Seeds docker/compose.yml's moto server (run by the moto-seed service, image
# amazon/aws-cli): the parameter WordPress reads, one for the PostgreSQL
# server, and an RDS instance for the monitor to watch.
set -eu
aws() { command aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }
aws ssm put-parameter --overwrite --type SecureString --name /wordpress/db \
  --value "mysql://wordpress:${MARIADB_PASSWORD}@mariadb:3306/wordpress" >/dev/null
aws ssm put-parameter --overwrite --type SecureString --name /wordpress/db-pg \
  --value "postgresql://wordpress:${POSTGRES_PASSWORD}@postgres:5432/wordpress" >/dev/null
aws rds describe-db-instances --db-instance-identifier wordpress-db >/dev/null 2>&1 ||
  aws rds create-db-instance --db-instance-identifier wordpress-db --engine mariadb \
    --db-instance-class db.t3.micro --allocated-storage 20 \
    --master-username wordpress --master-user-password "$MARIADB_PASSWORD" >/dev/null
echo "seeded /wordpress/db, /wordpress/db-pg and the RDS instance wordpress-db"
