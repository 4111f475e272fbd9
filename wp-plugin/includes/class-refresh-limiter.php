<?php
/**
 * At most one SSM fetch per second per host, shared by every worker of a PHP pool.
 *
 * During a database outage every request fails to connect, and each would otherwise ask SSM
 * for a new endpoint: hundreds of GetParameter calls a second, which SSM throttles, which
 * then delays the recovery. The drop-ins call refresh() instead of ssm_db_config_refresh().
 *
 * How it works: a small state file in sys_get_temp_dir() (one per user and parameter) holds
 * the time of the last fetch and the SSM parameter version it returned, under flock(). A worker
 * fetches when the last fetch is a second old or more. Inside that second it does not fetch,
 * unless another worker has already fetched a version that this worker has not cached (each
 * worker caches in its own memory): then it waits for the second to end and fetches, so that
 * every worker follows a failover within about a second without breaking the limit. The file
 * never holds a secret.
 *
 * Used by the drop-ins before WordPress has loaded its functions, so it uses none.
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || defined( 'SSM_DB_CONFIG_STANDALONE' ) || exit;

/**
 * The limiter.
 */
final class SSM_DB_Config_Refresh_Limiter {
	/**
	 * @param string|null $parameter SSM parameter name, or null for ssm_db_config.parameter.
	 * @param float       $interval  Minimum seconds between two fetches on this host.
	 * @param string|null $dir       Folder for the state file; sys_get_temp_dir() by default.
	 */
	public function __construct(
		private readonly ?string $parameter = null,
		private readonly float $interval = 1.0,
		private readonly ?string $dir = null
	) {
	}

	/**
	 * The state file shared by this user's processes for this parameter.
	 */
	public function state_file(): string {
		$uid  = function_exists( 'posix_geteuid' ) ? posix_geteuid() : getmyuid();
		$name = $this->parameter ?? (string) ini_get( 'ssm_db_config.parameter' );
		return rtrim( $this->dir ?? sys_get_temp_dir(), '/' ) . '/ssm-db-config-refresh-' . $uid . '-' . md5( $name ) . '.json';
	}

	/**
	 * Refreshes the cached value unless another fetch happened within the interval.
	 *
	 * @return array{fetched: bool, config: array|null, error: string|null, waited_ms: float}
	 *               config is the value to use now (refreshed or still cached); error is the
	 *               exception class and code when the fetch failed (never its value).
	 */
	public function refresh(): array {
		$outcome = array(
			'fetched'   => false,
			'config'    => null,
			'error'     => null,
			'waited_ms' => 0.0,
		);
		if ( ! function_exists( 'ssm_db_config_refresh' ) ) {
			$outcome['error'] = 'extension_not_loaded';
			return $outcome;
		}
		$file   = $this->state_file();
		$handle = @fopen( $file, 'c+' ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
		if ( false === $handle ) {
			// No shared state (unwritable temp dir): fetching without a limit is worse than
			// serving the cached value; the next TTL expiry fetches anyway.
			$outcome['error']  = 'state_file_unavailable';
			$outcome['config'] = $this->current();
			return $outcome;
		}
		try {
			flock( $handle, LOCK_EX );
			$state = json_decode( (string) stream_get_contents( $handle, -1, 0 ), true );
			$last  = is_array( $state ) ? (float) ( $state['time'] ?? 0 ) : 0.0;
			$known = is_array( $state ) ? ( $state['version'] ?? null ) : null;
			$since = microtime( true ) - $last;
			if ( $since >= 0 && $since < $this->interval ) {
				if ( null === $known || $known === $this->cached_version() ) {
					$outcome['config'] = $this->current();
					return $outcome;
				}
				$wait = $this->interval - $since;
				usleep( (int) ( $wait * 1e6 ) );
				$outcome['waited_ms'] = round( $wait * 1000, 1 );
			}
			$started = microtime( true );
			try {
				$outcome['config']  = ssm_db_config_refresh( $this->parameter );
				$outcome['fetched'] = true;
			} catch ( \Throwable $e ) {
				$outcome['error'] = get_class( $e ) . '#' . $e->getCode();
				$outcome['fetched'] = true;
			}
			$this->write_state( $handle, $started, $this->cached_version() );
			return $outcome;
		} finally {
			flock( $handle, LOCK_UN );
			fclose( $handle ); // phpcs:ignore WordPress.WP.AlternativeFunctions
		}
	}

	/**
	 * The SSM parameter version this process has cached, or null.
	 */
	private function cached_version(): ?int {
		if ( null !== $this->parameter || ! function_exists( 'ssm_db_config_status' ) ) {
			// The status describes the ssm_db_config.parameter only.
			return null;
		}
		$status = ssm_db_config_status();
		if ( empty( $status['cached'] ) || ! isset( $status['version'] ) ) {
			return null;
		}
		// The cached value may be another parameter's, fetched by a call that named it.
		if ( isset( $status['cached_parameter'], $status['parameter'] ) && $status['cached_parameter'] !== $status['parameter'] ) {
			return null;
		}
		return (int) $status['version'];
	}

	/**
	 * The cached value (or a fetch when there is none), or null when that fails.
	 */
	private function current(): ?array {
		try {
			return ssm_db_config( $this->parameter );
		} catch ( \Throwable $e ) {
			return null;
		}
	}

	/**
	 * @param resource $handle  Locked state file.
	 * @param float    $time    When the fetch started.
	 * @param int|null $version Version now cached.
	 */
	private function write_state( $handle, float $time, ?int $version ): void {
		ftruncate( $handle, 0 );
		rewind( $handle );
		fwrite( $handle, (string) json_encode( array( 'time' => $time, 'version' => $version, 'pid' => getmypid() ) ) ); // phpcs:ignore WordPress.WP.AlternativeFunctions
		fflush( $handle );
	}
}
