#!/bin/sh
# Creates Temporal's two databases in PostgreSQL and brings their schemas up to the version of
# the admin-tools image, which matches the server's. Safe to run again: update-schema applies
# only the versions still missing.
set -eu

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS names the PostgreSQL host}"
: "${POSTGRES_USER:?POSTGRES_USER names the PostgreSQL user}"
SCHEMA=/etc/temporal/schema/postgresql/v12

sql_tool() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" \
        -u "$POSTGRES_USER" "$@"
}

for database in temporal temporal_visibility; do
    case "$database" in
        temporal) versioned="$SCHEMA/temporal/versioned" ;;
        *) versioned="$SCHEMA/visibility/versioned" ;;
    esac
    # The database is there from an earlier run, or cannot be reached: setup-schema below
    # tells the two apart.
    sql_tool --db "$database" create || echo "database $database not created; it may exist"
    sql_tool --db "$database" setup-schema -v 0.0
    sql_tool --db "$database" update-schema -d "$versioned"
done
echo "Temporal schemas are current"
