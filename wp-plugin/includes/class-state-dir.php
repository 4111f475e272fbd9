<?php
/**
 * The private folder of the plugin's small state files, shared by the health endpoints and the
 * drop-ins' refresh limiter. Uses no WordPress function.
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || defined( 'SSM_DB_CONFIG_STANDALONE' ) || exit;

require_once __DIR__ . '/class-health-access.php';

/**
 * The private folder that holds the plugin's small state files (the health result, the
 * drop-ins' last refresh): SSM_DB_CONFIG_STATE_DIR (a constant or server variable, as above)
 * or `<sys_get_temp_dir()>/ssm-db-config-<uid>`. Made 0700 and, like any that exists already,
 * used only when it is a real directory (not a symlink) owned by this user and closed to
 * others: in a shared temporary folder another account could otherwise create the files first
 * and feed the endpoints a forged answer.
 */
final class SSM_DB_Config_State_Dir {
	/** Setting: the folder. */
	const SETTING = 'SSM_DB_CONFIG_STATE_DIR';

	/**
	 * The folder, made if needed, or null when it cannot be used safely.
	 *
	 * @param string|null $dir   The folder; null for the setting or the default.
	 * @param string|null $error Set to why the folder cannot be used.
	 */
	public static function open( ?string $dir = null, ?string &$error = null ): ?string {
		$uid = function_exists( 'posix_geteuid' ) ? posix_geteuid() : getmyuid();
		$dir = rtrim( $dir ?? SSM_DB_Config_Health_Access::setting( self::SETTING ) ?? ( sys_get_temp_dir() . '/ssm-db-config-' . $uid ), '/' );
		clearstatcache( true, $dir );
		if ( ! file_exists( $dir ) && ! is_link( $dir ) ) {
			$old = umask( 077 );
			@mkdir( $dir, 0700 ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions -- another worker may make it at the same time; checked below.
			umask( $old );
			clearstatcache( true, $dir );
		}
		$stat = @lstat( $dir ); // phpcs:ignore WordPress.PHP.NoSilencedErrors
		if ( false === $stat ) {
			$error = "$dir cannot be created";
		} elseif ( 0040000 !== ( $stat['mode'] & 0170000 ) ) {
			$error = "$dir is not a directory (or is a symlink)";
		} elseif ( $stat['uid'] !== $uid ) {
			$error = "$dir is owned by uid {$stat['uid']}, not this user ($uid)";
		} elseif ( 0 !== ( $stat['mode'] & 077 ) ) {
			$error = sprintf( '%s has mode %o; it must be closed to others (0700)', $dir, $stat['mode'] & 0777 );
		} else {
			return $dir;
		}
		return null;
	}

	/**
	 * Reads a JSON state file; null when absent or unreadable.
	 *
	 * @param string $file Path.
	 */
	public static function read( string $file ): ?array {
		$text = @file_get_contents( $file ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
		$data = false === $text ? null : json_decode( $text, true );
		return is_array( $data ) ? $data : null;
	}

	/**
	 * Writes a JSON state file whole (a temporary file, then rename), so that readers need no
	 * lock and never see half of it.
	 *
	 * @param string $file Path.
	 * @param array  $data What to write (never a secret).
	 */
	public static function write( string $file, array $data ): bool {
		$temp = $file . '.' . getmypid() . '.tmp';
		if ( false === @file_put_contents( $temp, (string) json_encode( $data ) ) ) { // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
			return false;
		}
		if ( ! @rename( $temp, $file ) ) { // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
			@unlink( $temp ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
			return false;
		}
		return true;
	}
}
