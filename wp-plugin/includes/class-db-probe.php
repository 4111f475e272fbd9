<?php
/**
 * Connects to the database named by ssm_db_config() and asks whether it is a writer.
 *
 * Shared by the admin page, Site Health and the standalone health endpoints, so it uses no
 * WordPress function. Everything runs against one deadline: a load balancer's health check
 * must answer in time even when the database host is a black hole, so the PostgreSQL
 * connection is made asynchronously (libpq rounds connect_timeout up to 2 s) and the MySQL
 * query is sent with MYSQLI_ASYNC and polled.
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || defined( 'SSM_DB_CONFIG_STANDALONE' ) || exit;

/**
 * What one probe found. Plain data; `reason` is a stable code that is safe to show anyone
 * (it names no host, user or password); `detail` is for administrators only.
 */
final class SSM_DB_Config_Probe_Result {
	/** Reason codes. */
	const WRITER            = 'writer';
	const READ_ONLY         = 'read_only';
	const IN_RECOVERY       = 'in_recovery';
	const CONNECT_FAILED    = 'connect_failed';
	const TIMEOUT           = 'timeout';
	const QUERY_FAILED      = 'query_failed';
	const DRIVER_MISSING    = 'driver_missing';
	const UNKNOWN_ENGINE    = 'unknown_engine';
	const CONFIG_UNAVAILABLE = 'config_unavailable';
	const BAD_OPTION         = 'bad_option';

	/**
	 * @param bool        $reachable  A connection was made.
	 * @param bool        $writer     The server accepts writes.
	 * @param string      $reason     One of the constants above.
	 * @param float       $latency_ms Time from the start of the probe to its answer.
	 * @param string      $engine     postgresql or mysql (or what the configuration said).
	 * @param string|null $detail     Driver message with the password removed, for administrators.
	 * @param bool        $auth_failed The server refused the login (MySQL 1045, PostgreSQL's
	 *                                 "authentication failed", pg_hba.conf refusals): a new
	 *                                 password or IAM token may help, unlike a host that is down.
	 * @param bool        $retried    The result is that of a second try with a new password or token.
	 */
	public function __construct(
		public readonly bool $reachable,
		public readonly bool $writer,
		public readonly string $reason,
		public readonly float $latency_ms,
		public readonly string $engine,
		public readonly ?string $detail = null,
		public readonly bool $auth_failed = false,
		public readonly bool $retried = false
	) {
	}
}

/**
 * The probe itself.
 */
final class SSM_DB_Config_Db_Probe {
	/** MySQL's ER_ACCESS_DENIED_ERROR: wrong password, or an IAM token refused. */
	const MYSQL_ACCESS_DENIED = 1045;

	/**
	 * PostgreSQL's messages for SQLSTATE 28P01 (invalid_password: "password authentication
	 * failed", "PAM authentication failed", which is how RDS refuses an IAM token) and 28000
	 * (invalid_authorization_specification: pg_hba.conf refusals). PHP's pgsql gives no
	 * SQLSTATE for a failed connection, only libpq's message, which the server writes in English
	 * unless its lc_messages says otherwise.
	 */
	const PG_AUTH_FAILED = '/authentication failed for user|pg_hba\.conf rejects connection|no pg_hba\.conf entry/';

	/** Whether the last connection of this probe was refused at login. */
	private bool $auth_failed = false;

	/**
	 * Probes the database that ssm_db_config() names; when the login is refused, asks the
	 * extension once for a new password (ssm_db_config_refresh(): for an `auth=iam` value a new
	 * IAM token, made again even when the value itself is not fetched again) and probes once more
	 * within the same deadline. One retry, never more: a login that keeps failing (a wrong IAM
	 * policy, a user that does not exist) costs one refresh per check, and the extension bounds
	 * those (at most one fetch per second per host; signing is local).
	 *
	 * @param float         $deadline Absolute time (microtime(true)) by which to answer.
	 * @param callable|null $refresh  What asks for the new password; returns the array
	 *                                ssm_db_config() returns. Default ssm_db_config_refresh().
	 * @throws \Throwable What ssm_db_config() throws when there is no value to probe with.
	 */
	public function check_configured( float $deadline, ?callable $refresh = null ): SSM_DB_Config_Probe_Result {
		$config = ssm_db_config();
		$status = ssm_db_config_status();
		// An IAM token must travel over TLS (RDS refuses it otherwise); WordPress gets
		// MYSQL_CLIENT_FLAGS from the extension for it, which this standalone probe may not see.
		$iam    = 'iam' === ( $status['auth'] ?? null );
		$result = $this->check( $config, $deadline, (array) ( $status['options'] ?? array() ), $iam );
		if ( ! $result->auth_failed || microtime( true ) >= $deadline ) {
			return $result;
		}
		try {
			$config = null === $refresh ? ssm_db_config_refresh() : $refresh();
		} catch ( \Throwable $e ) {
			// The refused login is the better answer than the refresh's failure.
			return $result;
		}
		$status = ssm_db_config_status();
		$retry  = $this->check( $config, $deadline, (array) ( $status['options'] ?? array() ), 'iam' === ( $status['auth'] ?? null ) );
		unset( $config );
		return new SSM_DB_Config_Probe_Result( $retry->reachable, $retry->writer, $retry->reason, $retry->latency_ms + $result->latency_ms, $retry->engine, $retry->detail, $retry->auth_failed, true );
	}

	/**
	 * Probes the database that $config (the array ssm_db_config() returns) names.
	 *
	 * @param array $config   DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME, DB_ENGINE.
	 * @param float $deadline Absolute time (microtime(true)) by which to answer.
	 * @param array $options  Connection options from ssm_db_config_status()['options']: for
	 *                        PostgreSQL sslmode, sslrootcert, sslcert, sslkey,
	 *                        target_session_attrs; for MySQL see mysql_tls().
	 * @param bool  $tls      MySQL: use TLS even when neither the options nor MYSQL_CLIENT_FLAGS
	 *                        ask for it, as the extension's MYSQL_CLIENT_FLAGS does for an
	 *                        `auth=iam` value (PostgreSQL's IAM values carry sslmode).
	 */
	public function check( #[\SensitiveParameter] array $config, float $deadline, array $options = array(), bool $tls = false ): SSM_DB_Config_Probe_Result {
		$start             = microtime( true );
		$this->auth_failed = false;
		$engine            = (string) ( $config['DB_ENGINE'] ?? '' );
		list( $host, $port ) = self::split_host( (string) ( $config['DB_HOST'] ?? '' ), (int) ( $config['DB_PORT'] ?? 0 ) );
		try {
			switch ( $engine ) {
				case 'postgresql':
					list( $reason, $detail ) = $this->check_postgresql( $host, $port, $config, $options, $deadline );
					break;
				case 'mysql':
					list( $reason, $detail ) = $this->check_mysql( $host, $port, $config, $options, $deadline, $tls );
					break;
				default:
					list( $reason, $detail ) = array( SSM_DB_Config_Probe_Result::UNKNOWN_ENGINE, null );
			}
		} catch ( \Throwable $e ) {
			// mysqli may throw when a caller enabled exceptions globally; treat it as a failed connection.
			list( $reason, $detail ) = array( SSM_DB_Config_Probe_Result::CONNECT_FAILED, get_class( $e ) . ': ' . $e->getMessage() );
		}
		$reachable = in_array( $reason, array( SSM_DB_Config_Probe_Result::WRITER, SSM_DB_Config_Probe_Result::READ_ONLY, SSM_DB_Config_Probe_Result::IN_RECOVERY ), true );
		return new SSM_DB_Config_Probe_Result(
			$reachable,
			SSM_DB_Config_Probe_Result::WRITER === $reason,
			$reason,
			round( ( microtime( true ) - $start ) * 1000, 1 ),
			$engine,
			self::scrub( $detail, (string) ( $config['DB_PASSWORD'] ?? '' ) ),
			$this->auth_failed
		);
	}

	/**
	 * Splits WordPress' "host:port" (IPv6 in brackets) into host and port.
	 *
	 * @param string $db_host      DB_HOST, e.g. "db.example:5432", "[2001:db8::1]:3306" or "db".
	 * @param int    $default_port Used when DB_HOST carries no port.
	 * @return array{0: string, 1: int}
	 */
	public static function split_host( string $db_host, int $default_port ): array {
		if ( preg_match( '/^\[([^\]]+)\](?::(\d+))?$/', $db_host, $m ) ) {
			return array( $m[1], isset( $m[2] ) ? (int) $m[2] : $default_port );
		}
		if ( 1 === substr_count( $db_host, ':' ) ) {
			list( $host, $port ) = explode( ':', $db_host );
			if ( 1 === preg_match( '/^[0-9]+$/D', $port ) ) {
				return array( $host, (int) $port );
			}
		}
		return array( $db_host, $default_port );
	}

	/**
	 * Removes the password from a driver message, should a driver ever echo it.
	 *
	 * @param string|null $text     Message.
	 * @param string      $password Password to remove.
	 */
	public static function scrub( ?string $text, #[\SensitiveParameter] string $password ): ?string {
		if ( null === $text ) {
			return null;
		}
		$text = trim( $text );
		if ( '' !== $password ) {
			$text = str_replace( array( $password, rawurlencode( $password ) ), '***', $text );
		}
		return $text;
	}

	/**
	 * @return array{0: string, 1: string|null} Reason and detail.
	 */
	private function check_postgresql( string $host, int $port, #[\SensitiveParameter] array $config, array $options, float $deadline ): array {
		if ( ! function_exists( 'pg_connect' ) ) {
			return array( SSM_DB_Config_Probe_Result::DRIVER_MISSING, 'The pgsql PHP extension is not loaded.' );
		}
		$params = array(
			'host'             => $host,
			'port'             => (string) $port,
			'dbname'           => (string) $config['DB_NAME'],
			'user'             => (string) $config['DB_USER'],
			'password'         => (string) $config['DB_PASSWORD'],
			'application_name' => 'ssm-db-config-probe',
			'connect_timeout'  => '2',
		);
		foreach ( array( 'sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'target_session_attrs' ) as $key ) {
			if ( isset( $options[ $key ] ) && is_scalar( $options[ $key ] ) ) {
				$params[ $key ] = (string) $options[ $key ];
			}
		}
		$dsn = '';
		foreach ( $params as $key => $value ) {
			$dsn .= $key . "='" . addcslashes( $value, "'\\" ) . "' ";
		}
		$conn = @pg_connect( $dsn, PGSQL_CONNECT_ASYNC | PGSQL_CONNECT_FORCE_NEW ); // phpcs:ignore WordPress.PHP.NoSilencedErrors -- the warning would name the host; we report a reason instead.
		unset( $dsn, $params );
		if ( false === $conn ) {
			return array( SSM_DB_Config_Probe_Result::CONNECT_FAILED, null );
		}
		try {
			while ( true ) {
				$state = pg_connect_poll( $conn );
				if ( PGSQL_POLLING_OK === $state ) {
					break;
				}
				if ( PGSQL_POLLING_FAILED === $state ) {
					$error             = pg_last_error( $conn );
					$this->auth_failed = 1 === preg_match( self::PG_AUTH_FAILED, $error );
					return array( SSM_DB_Config_Probe_Result::CONNECT_FAILED, $error );
				}
				if ( ! $this->wait_socket( pg_socket( $conn ), PGSQL_POLLING_WRITING === $state, $deadline ) ) {
					return array( SSM_DB_Config_Probe_Result::TIMEOUT, null );
				}
			}
			if ( ! pg_send_query( $conn, 'SELECT pg_is_in_recovery()' ) ) {
				return array( SSM_DB_Config_Probe_Result::QUERY_FAILED, pg_last_error( $conn ) );
			}
			while ( pg_connection_busy( $conn ) ) {
				if ( ! $this->wait_socket( pg_socket( $conn ), false, $deadline ) ) {
					return array( SSM_DB_Config_Probe_Result::TIMEOUT, null );
				}
			}
			$result = pg_get_result( $conn );
			$row    = false === $result ? false : pg_fetch_row( $result );
			if ( false === $row ) {
				return array( SSM_DB_Config_Probe_Result::QUERY_FAILED, pg_last_error( $conn ) );
			}
			return 'f' === $row[0]
				? array( SSM_DB_Config_Probe_Result::WRITER, null )
				: array( SSM_DB_Config_Probe_Result::IN_RECOVERY, null );
		} finally {
			pg_close( $conn );
		}
	}

	/**
	 * How the MySQL probe uses TLS, as the site does: from the value's options (the site's
	 * MYSQL_CLIENT_FLAGS is not visible to the standalone endpoints, which do not load
	 * wp-config.php), and from MYSQL_CLIENT_FLAGS when it is defined (in WordPress, or a wrapper).
	 *
	 * Options, names as the mysql client spells them (`ssl-mode` or `ssl_mode`, ...):
	 * - ssl-mode: DISABLED; REQUIRED (encrypted, the server's certificate not verified);
	 *   VERIFY_CA and VERIFY_IDENTITY (verified against ssl-ca; mysqlnd checks the host name in
	 *   both). Without it, TLS is used when MYSQL_CLIENT_FLAGS has MYSQLI_CLIENT_SSL (verified
	 *   only with MYSQLI_CLIENT_SSL_VERIFY_SERVER_CERT, as mysqlnd does), or when ssl-ca is
	 *   given (verified).
	 * - ssl-ca, ssl-capath, ssl-cert, ssl-key, ssl-cipher: files and cipher list for mysqli::ssl_set().
	 *
	 * @param array    $options      The value's options.
	 * @param int|null $client_flags MYSQL_CLIENT_FLAGS, if defined.
	 * @return array{flags: int, ssl: array{key: ?string, cert: ?string, ca: ?string, capath: ?string, cipher: ?string}|null, error: ?string}
	 *               flags for real_connect(); ssl: the files for ssl_set(), null for no TLS;
	 *               error: an option that cannot be read as meant (then do not connect).
	 */
	public static function mysql_tls( array $options, ?int $client_flags = null ): array {
		$get = static function ( string $name ) use ( $options ): ?string {
			foreach ( array( $name, str_replace( '-', '_', $name ) ) as $key ) {
				if ( isset( $options[ $key ] ) && is_scalar( $options[ $key ] ) && '' !== (string) $options[ $key ] ) {
					return (string) $options[ $key ];
				}
			}
			return null;
		};
		$files = array(
			'key'    => $get( 'ssl-key' ),
			'cert'   => $get( 'ssl-cert' ),
			'ca'     => $get( 'ssl-ca' ),
			'capath' => $get( 'ssl-capath' ),
			'cipher' => $get( 'ssl-cipher' ),
		);
		$flags = (int) $client_flags & ~( MYSQLI_CLIENT_SSL | MYSQLI_CLIENT_SSL_DONT_VERIFY_SERVER_CERT | MYSQLI_CLIENT_SSL_VERIFY_SERVER_CERT );
		$mode  = $get( 'ssl-mode' );
		if ( null === $mode ) {
			if ( null !== $files['ca'] || null !== $files['capath'] ) {
				$mode = 'VERIFY_IDENTITY';
			} elseif ( (int) $client_flags & MYSQLI_CLIENT_SSL ) {
				// mysqlnd verifies the server's certificate when told to, or when given a CA or a
				// certificate; with MYSQLI_CLIENT_SSL alone (WordPress's mysqli_real_connect(), no
				// ssl_set()) it encrypts without verifying, and so does the probe.
				$mode = ( (int) $client_flags & MYSQLI_CLIENT_SSL_VERIFY_SERVER_CERT ) ? 'VERIFY_IDENTITY' : 'REQUIRED';
			} else {
				$mode = 'DISABLED';
			}
		}
		switch ( strtoupper( $mode ) ) {
			case 'DISABLED':
				return array( 'flags' => $flags, 'ssl' => null, 'error' => null );
			case 'REQUIRED':
				return array( 'flags' => $flags | MYSQLI_CLIENT_SSL | MYSQLI_CLIENT_SSL_DONT_VERIFY_SERVER_CERT, 'ssl' => $files, 'error' => null );
			case 'VERIFY_CA':
			case 'VERIFY_IDENTITY':
				return array( 'flags' => $flags | MYSQLI_CLIENT_SSL | MYSQLI_CLIENT_SSL_VERIFY_SERVER_CERT, 'ssl' => $files, 'error' => null );
			default:
				// PREFERRED included: mysqlnd cannot fall back to plain text, and guessing either way
				// would probe differently from the site.
				return array( 'flags' => $flags, 'ssl' => null, 'error' => 'ssl-mode "' . $mode . '" is not one of DISABLED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY' );
		}
	}

	/**
	 * @return array{0: string, 1: string|null} Reason and detail.
	 */
	private function check_mysql( string $host, int $port, #[\SensitiveParameter] array $config, array $options, float $deadline, bool $tls_required ): array {
		if ( ! function_exists( 'mysqli_init' ) ) {
			return array( SSM_DB_Config_Probe_Result::DRIVER_MISSING, 'The mysqli PHP extension is not loaded.' );
		}
		$tls = self::mysql_tls( $options, defined( 'MYSQL_CLIENT_FLAGS' ) ? (int) MYSQL_CLIENT_FLAGS : ( $tls_required ? MYSQLI_CLIENT_SSL : null ) );
		if ( null !== $tls['error'] ) {
			return array( SSM_DB_Config_Probe_Result::BAD_OPTION, $tls['error'] );
		}
		// A socket: DB_HOST "localhost:/run/mysqld/mysqld.sock" (split_host leaves it whole).
		$socket_path = null;
		if ( preg_match( '#^(?:localhost)?:(/.+)$#', $host, $m ) ) {
			$socket_path = $m[1];
			$host        = 'localhost';
		}
		// mysqlnd reads a bare IPv6 address's last group as a port: it needs the brackets.
		$address = str_contains( $host, ':' ) ? '[' . $host . ']' : $host;
		if ( null === $socket_path ) {
			// mysqli's connect timeout counts whole seconds; a TCP connection made first, within the
			// deadline, answers "unreachable" in time. A server that accepts but never greets is
			// bounded by MYSQLI_OPT_CONNECT_TIMEOUT (1 s).
			$remaining = $deadline - microtime( true );
			if ( $remaining <= 0 ) {
				return array( SSM_DB_Config_Probe_Result::TIMEOUT, null );
			}
			$socket = @stream_socket_client( 'tcp://' . $address . ':' . $port, $errno, $errstr, $remaining ); // phpcs:ignore WordPress.PHP.NoSilencedErrors
			if ( false === $socket ) {
				// 110 is ETIMEDOUT on Linux (the sockets extension, which names it, may be absent).
				return array( 110 === $errno || microtime( true ) >= $deadline ? SSM_DB_Config_Probe_Result::TIMEOUT : SSM_DB_Config_Probe_Result::CONNECT_FAILED, $errstr );
			}
			fclose( $socket );
		}

		// Errors are read from the link, not thrown (WordPress' wpdb sets the same mode).
		mysqli_report( MYSQLI_REPORT_OFF );
		$link = mysqli_init();
		$link->options( MYSQLI_OPT_CONNECT_TIMEOUT, 1 );
		$link->options( MYSQLI_OPT_READ_TIMEOUT, 1 );
		if ( null !== $tls['ssl'] ) {
			$link->ssl_set( $tls['ssl']['key'], $tls['ssl']['cert'], $tls['ssl']['ca'], $tls['ssl']['capath'], $tls['ssl']['cipher'] );
		}
		try {
			if ( ! @$link->real_connect( null === $socket_path ? $address : 'localhost', (string) $config['DB_USER'], (string) $config['DB_PASSWORD'], (string) $config['DB_NAME'], $port, $socket_path, $tls['flags'] ) ) { // phpcs:ignore WordPress.PHP.NoSilencedErrors
				$this->auth_failed = self::MYSQL_ACCESS_DENIED === mysqli_connect_errno();
				return array( SSM_DB_Config_Probe_Result::CONNECT_FAILED, mysqli_connect_error() );
			}
			$link->query( 'SELECT @@GLOBAL.read_only, @@GLOBAL.innodb_read_only', MYSQLI_ASYNC );
			while ( true ) {
				$remaining = $deadline - microtime( true );
				if ( $remaining <= 0 ) {
					return array( SSM_DB_Config_Probe_Result::TIMEOUT, null );
				}
				$read   = array( $link );
				$error  = array( $link );
				$reject = array();
				$ready  = mysqli_poll( $read, $error, $reject, (int) $remaining, (int) ( fmod( $remaining, 1.0 ) * 1e6 ) );
				if ( false === $ready ) {
					return array( SSM_DB_Config_Probe_Result::QUERY_FAILED, null );
				}
				if ( $ready > 0 ) {
					break;
				}
			}
			$result = $link->reap_async_query();
			$row    = $result instanceof mysqli_result ? $result->fetch_row() : null;
			if ( ! is_array( $row ) ) {
				return array( SSM_DB_Config_Probe_Result::QUERY_FAILED, $link->error );
			}
			return ( '0' === (string) $row[0] && '0' === (string) $row[1] )
				? array( SSM_DB_Config_Probe_Result::WRITER, null )
				: array( SSM_DB_Config_Probe_Result::READ_ONLY, null );
		} finally {
			@$link->close(); // phpcs:ignore WordPress.PHP.NoSilencedErrors -- closing a link that never connected warns.
		}
	}

	/**
	 * Waits until $stream can be read (or written), or the deadline passes.
	 *
	 * @param resource|false $stream   The connection's socket.
	 * @param bool           $write    Wait for writability rather than readability.
	 * @param float          $deadline Absolute time.
	 * @return bool False when the deadline passed.
	 */
	private function wait_socket( $stream, bool $write, float $deadline ): bool {
		$remaining = $deadline - microtime( true );
		if ( $remaining <= 0 || ! is_resource( $stream ) ) {
			return false;
		}
		$read   = $write ? null : array( $stream );
		$writes = $write ? array( $stream ) : null;
		$except = null;
		$ready  = @stream_select( $read, $writes, $except, (int) $remaining, (int) ( fmod( $remaining, 1.0 ) * 1e6 ) ); // phpcs:ignore WordPress.PHP.NoSilencedErrors
		return false !== $ready && $ready > 0;
	}
}
