<?php
/**
 * How the drop-ins ask SSM again after a failed connection: never waiting, at most one fetch
 * per second per host.
 *
 * During a database outage every request fails to connect, and each would otherwise ask SSM
 * for a new endpoint: hundreds of GetParameter calls a second, which SSM throttles, which then
 * delays the recovery. The drop-ins call refresh() instead of ssm_db_config_refresh().
 *
 * With the extension's host-wide cache (ssm_db_config_status()['shared_cache'], the default
 * under php-fpm) the extension owns the limit: ssm_db_config_refresh() fetches at most once per
 * second per host counted from the host's last attempt, good or bad, serves what the host holds
 * in between (the value another worker just fetched, so every worker follows a failover at
 * once), and respects the host's backoff after failures and throttling. refresh() then only
 * calls it.
 *
 * Without it (ssm_db_config.shared_dir = off, or the folder unusable) each worker's refresh
 * would fetch, so the limit is kept here, in the plugin's private state folder: a lock taken
 * without waiting (a worker that finds another one refreshing serves what it has and returns
 * at once) and a small file with the time of the host's last attempt and the SSM parameter
 * version it returned. A worker refreshes when that attempt is a second old or more, or at once
 * when it holds an older version than the one fetched (once per worker and version). Nothing
 * here sleeps or waits on a lock, and the file never holds a secret.
 *
 * Used by the drop-ins before WordPress has loaded its functions, so it uses none.
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || defined( 'SSM_DB_CONFIG_STANDALONE' ) || exit;

require_once __DIR__ . '/class-state-dir.php';

/**
 * The limiter.
 */
final class SSM_DB_Config_Refresh_Limiter {
	/**
	 * @param string|null $parameter SSM parameter name, or null for ssm_db_config.parameter.
	 * @param float       $interval  Minimum seconds between two fetches on this host (when the
	 *                               limit is kept here).
	 * @param string|null $dir       State folder; SSM_DB_Config_State_Dir's by default.
	 */
	public function __construct(
		private readonly ?string $parameter = null,
		private readonly float $interval = 1.0,
		private readonly ?string $dir = null
	) {
	}

	/**
	 * The state file shared by this user's processes for this parameter, or null when the
	 * private state folder cannot be used.
	 */
	public function state_file(): ?string {
		$dir = SSM_DB_Config_State_Dir::open( $this->dir );
		if ( null === $dir ) {
			return null;
		}
		$name = $this->parameter ?? (string) ini_get( 'ssm_db_config.parameter' );
		return $dir . '/refresh-' . md5( $name ) . '.json';
	}

	/**
	 * Refreshes the cached value, within the host's limit, without waiting for anyone.
	 *
	 * @return array{fetched: bool, config: array|null, error: string|null, limit: string}
	 *               config is the value to use now (refreshed or still cached); error is the
	 *               exception class and code when the fetch failed (never its value); limit is
	 *               who kept the rate limit: extension, or plugin.
	 */
	public function refresh(): array {
		$outcome = array(
			'fetched' => false,
			'config'  => null,
			'error'   => null,
			'limit'   => 'plugin',
		);
		if ( ! function_exists( 'ssm_db_config_refresh' ) ) {
			$outcome['error'] = 'extension_not_loaded';
			return $outcome;
		}
		if ( ! empty( ssm_db_config_status()['shared_cache'] ) ) {
			$outcome['limit'] = 'extension';
			return $this->fetch( $outcome );
		}
		$file = $this->state_file();
		$lock = null === $file ? false : @fopen( $file . '.lock', 'c' ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
		if ( false === $lock ) {
			// No shared state: fetching without a limit is worse than serving the cached value;
			// the next TTL expiry fetches anyway.
			$outcome['error']  = 'state_file_unavailable';
			$outcome['config'] = $this->current();
			return $outcome;
		}
		try {
			if ( ! flock( $lock, LOCK_EX | LOCK_NB ) ) {
				// Another worker is refreshing right now: use what this one has.
				$outcome['config'] = $this->current();
				return $outcome;
			}
			$state = SSM_DB_Config_State_Dir::read( $file );
			$since = microtime( true ) - (float) ( $state['time'] ?? 0 );
			$known = $state['version'] ?? null;
			$mine  = $this->cached_version();
			$behind = null !== $known && null !== $mine && $mine < $known;
			if ( $since >= 0 && $since < $this->interval && ! $behind ) {
				$outcome['config'] = $this->current();
				return $outcome;
			}
			$started = microtime( true );
			$outcome = $this->fetch( $outcome );
			$version = $this->cached_version();
			SSM_DB_Config_State_Dir::write(
				$file,
				array(
					// A worker that only caught up leaves the host's last attempt as it was.
					'time'    => $behind && $since < $this->interval ? (float) $state['time'] : $started,
					'version' => null === $version || ( null !== $known && $known > $version ) ? $known : $version,
					'pid'     => getmypid(),
				)
			);
			return $outcome;
		} finally {
			flock( $lock, LOCK_UN );
			fclose( $lock ); // phpcs:ignore WordPress.WP.AlternativeFunctions
		}
	}

	/**
	 * Calls the extension's refresh.
	 *
	 * @param array $outcome The outcome so far.
	 */
	private function fetch( array $outcome ): array {
		$before = $this->fetches();
		try {
			$outcome['config'] = ssm_db_config_refresh( $this->parameter );
		} catch ( \Throwable $e ) {
			$outcome['error']  = get_class( $e ) . '#' . $e->getCode();
			$outcome['config'] = null;
		}
		// The extension may have served what the host holds, or repeated the host's last
		// failure while it backs off, instead of asking SSM.
		$outcome['fetched'] = $this->fetches() > $before;
		return $outcome;
	}

	/**
	 * Requests this process has sent to SSM, whatever their outcome.
	 */
	private function fetches(): int {
		$status = ssm_db_config_status();
		return (int) ( $status['ssm_requests'] ?? 0 );
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
}
