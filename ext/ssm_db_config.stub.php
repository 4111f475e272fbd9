<?php

/**
 * Stubs for the ssm_db_config extension, for IDEs and static analysers.
 *
 * Written by hand (not generated): `cargo php stubs` cannot load the
 * extension, which binds PHP symbols that ext-php-rs does not.
 *
 * @generate-class-entries
 */

/**
 * WordPress's database settings from the SSM parameter, cached in this PHP
 * process for ssm_db_config.ttl seconds.
 *
 * The value is a postgresql://, postgres://, mysql:// or mariadb:// URL, or a
 * JSON object with engine, host, port, username, password and dbname. A
 * SecureString is decrypted. The name may carry a version or label selector
 * ("/app/db:3", "/app/db:prod") and may be a Secrets Manager reference
 * ("/aws/reference/secretsmanager/name").
 *
 * With "?auth=iam" in the URL ("auth": "iam" in JSON) the value has no
 * password: DB_PASSWORD is an IAM database authentication token for its user
 * and host (or "iam_host"), made with the extension's AWS credentials and
 * made again before it expires (docs/iam-auth.md). For a MySQL value,
 * ssm_db_config_define() then also defines MYSQL_CLIENT_FLAGS as
 * MYSQLI_CLIENT_SSL unless it is already defined.
 *
 * The returned array is shared and read-only; changing your copy copies it.
 *
 * @param string|null $parameter Parameter name; null for ssm_db_config.parameter.
 * @return array{DB_HOST: string, DB_PORT: int, DB_USER: string, DB_PASSWORD: string, DB_NAME: string, DB_ENGINE: 'postgresql'|'mysql'}
 *         DB_HOST is "host:port" (an IPv6 host in brackets: "[2001:db8::1]:5432"), or for a
 *         Unix socket WordPress's "localhost:/run/mysqld/mysqld.sock" (PostgreSQL: the socket's directory).
 * @throws SsmDbConfigException with code BAD_CONFIGURATION, before any request, when the
 *         name is not one SSM accepts (a connection URL passed by mistake: never echoed);
 *         when nothing usable is cached (none, or older than
 *         ssm_db_config.max_stale past its TTL) and it cannot be fetched or parsed.
 */
function ssm_db_config(?string $parameter = null): array {}

/**
 * Defines the constants DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME and
 * DB_ENGINE from the parameter, with the values ssm_db_config() returns: the
 * one line wp-config.php needs. It defines all six or none: when one of them
 * is already defined, or the value cannot be had, it throws and defines none.
 *
 * With ssm_db_config.define_constants on, the request's start has defined
 * them already: called without an argument it then does nothing, or throws
 * what stopped the request's start from defining them (without asking SSM
 * a second time).
 *
 * @param string|null $parameter Parameter name; null for ssm_db_config.parameter.
 * @throws SsmDbConfigException as ssm_db_config() does, and with code
 *         BAD_CONFIGURATION when one of the constants is already defined.
 */
function ssm_db_config_define(?string $parameter = null): void {}

/**
 * Fetches the parameter now, replaces the cached value and returns it. Call it
 * once after a failed database connection (a refused login included), when the
 * endpoint or password may have changed. It returns without asking SSM when
 * another process of the host fetched a newer value, when the host's last
 * attempt was less than a second ago, or while SSM backs off (docs/architecture.md).
 *
 * For an "auth=iam" value DB_PASSWORD is a token newer than the one served
 * before the call (unless that one is under a second old): made with the value fetched; or the newer one another
 * worker of the host made since; or, when the value held is kept, signed
 * again for it locally (no request to SSM) and shared with the host's other
 * workers. A token less than a second old is not signed again: within the
 * same second the signing makes the same token (its time has whole seconds).
 *
 * @param string|null $parameter Parameter name; null for ssm_db_config.parameter.
 * @return array{DB_HOST: string, DB_PORT: int, DB_USER: string, DB_PASSWORD: string, DB_NAME: string, DB_ENGINE: 'postgresql'|'mysql'}
 * @throws SsmDbConfigException when the fetch or the parsing fails (the cached value is kept);
 *         for an "auth=iam" value kept, when no credentials are at hand to sign with.
 */
function ssm_db_config_refresh(?string $parameter = null): array {}

/**
 * The extension's state in this process, for admin pages and health checks.
 * Never contains a password. The settings are those in effect (a php-fpm
 * pool's php_admin_value included); ini_refused lists the directive values
 * this process refused, with why (a name-like value is never echoed).
 *
 * @return array{
 *   extension_version: string, pid: int, parameter: ?string, credentials_parameter: ?string,
 *   region: ?string, endpoint_url: ?string, ttl_seconds: int, max_stale_seconds: int, timeout_ms: int,
 *   define_constants: bool, define_constants_state: 'off'|'not_tried'|'kept'|'request'|'failed',
 *   ini_refused: list<string>, fleet_hosts: int, ssm_throughput: int, max_parameters: int,
 *   shared_cache: bool, shared_dir: ?string, shared_cache_note: ?string,
 *   cached: bool, fresh: bool, stale: bool, state: 'empty'|'fresh'|'refresh_due'|'stale'|'too_old',
 *   stale_reason: ?string, cached_parameter: ?string, age_seconds: ?float, refresh_after_seconds: ?float,
 *   version: ?int, credentials_version: ?int, consecutive_failures: int, next_attempt_in_seconds: ?float,
 *   engine: ?string, host: ?string, port: ?int, socket: ?string, user: ?string, dbname: ?string, options: array<string, string>,
 *   auth: 'iam'|'password'|null, iam_host: ?string, iam_token_age_seconds: ?float,
 *   hits: int, misses: int, fetches: int, errors: int, shared_hits: int, ssm_requests: int,
 *   parameters_cached: int,
 *   last_error: ?array{kind: string, code: int, message: string},
 *   last_fetch_duration_ms: ?float, last_fetch_time: ?float
 * }
 */
function ssm_db_config_status(): array {}

/**
 * Thrown by ssm_db_config(), ssm_db_config_define() and ssm_db_config_refresh(). The message names
 * the parameter and what is wrong, never the value; the backtrace carries no
 * arguments. getCode() is one of the constants below.
 *
 * No function of this extension takes a secret as an argument, so none is
 * marked #[\SensitiveParameter]; mark your own functions that receive
 * DB_PASSWORD.
 */
class SsmDbConfigException extends RuntimeException
{
    /** The parameter, or the requested version or label of it, does not exist. */
    public const NOT_FOUND = 1;
    /** IAM or KMS refused the read (ssm:GetParameter, kms:Decrypt). */
    public const ACCESS_DENIED = 2;
    /** SSM throttled the call. */
    public const THROTTLED = 3;
    /** The fetch did not finish within ssm_db_config.timeout_ms. */
    public const TIMEOUT = 4;
    /** SSM could not be reached (refused, reset, DNS, TLS). */
    public const NETWORK = 5;
    /** The value is not a usable database URL or JSON object. */
    public const INVALID_VALUE = 6;
    /** No AWS credentials were found, or AWS does not know them. */
    public const NO_CREDENTIALS = 7;
    /** No parameter name, no region, or an invalid name. */
    public const BAD_CONFIGURATION = 8;
    /** AWS failed in another way (a 5xx, an unreadable response). */
    public const SERVICE = 9;
    /** A bug in the extension, caught instead of taking the PHP process down; nothing was changed. */
    public const INTERNAL = 10;
}
