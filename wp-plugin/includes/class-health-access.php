<?php
/**
 * Who may ask the standalone health endpoints, and where their state lives.
 *
 * The endpoints sit in the plugin folder, so every site that serves PHP files from wp-content
 * answers them, whatever rules the operator wrote for /health/*: without a check here anyone
 * on the internet could make each host open database connections and learn whether its
 * database is a writer. So they are closed by default and open only to what the operator
 * allowed, through two settings that are read before WordPress loads (the endpoints never load
 * it): a PHP constant of that name when one is defined (a wrapper file or auto_prepend_file),
 * else a server variable of that name (nginx `fastcgi_param`, Apache `SetEnv`, a php-fpm pool's
 * `env[]`):
 *
 * - SSM_DB_CONFIG_HEALTH_ALLOW: client addresses or CIDR blocks, IPv4 or IPv6, separated by
 *   commas or spaces ("10.0.0.0/16, 2600:1f18::/56"), matched against REMOTE_ADDR;
 * - SSM_DB_CONFIG_HEALTH_TOKEN: a shared secret of at least 16 characters that a request sends
 *   as the X-Health-Token header or the `token` query parameter (Route 53 and ALB health checks
 *   cannot send headers; Route 53's can request a path with a query string). Compared in
 *   constant time.
 *
 * A request is allowed when its address is on the list or it carries the token. A setting that
 * cannot be read as meant (a malformed address, a short token) closes the endpoints and is
 * logged with its name; the token itself is never logged.
 *
 * Uses no WordPress function.
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || defined( 'SSM_DB_CONFIG_STANDALONE' ) || exit;

/**
 * The access check of the health endpoints.
 */
final class SSM_DB_Config_Health_Access {
	/** Setting: addresses and CIDR blocks allowed. */
	const ALLOW = 'SSM_DB_CONFIG_HEALTH_ALLOW';
	/** Setting: the shared secret. */
	const TOKEN = 'SSM_DB_CONFIG_HEALTH_TOKEN';
	/** Shortest token accepted, in characters. */
	const TOKEN_MIN_LENGTH = 16;
	/** The header that carries the token. */
	const TOKEN_HEADER = 'X-Health-Token';
	/** The query parameter that carries the token. */
	const TOKEN_QUERY = 'token';

	/**
	 * A setting: the constant of that name when defined, else the server variable, else null.
	 *
	 * @param string $name Setting name.
	 */
	public static function setting( string $name ): ?string {
		if ( defined( $name ) ) {
			$value = constant( $name );
			return is_scalar( $value ) ? trim( (string) $value ) : null;
		}
		$value = $_SERVER[ $name ] ?? getenv( $name ); // phpcs:ignore WordPress.Security.ValidatedSanitizedInput -- set by the operator's server configuration, not the client.
		return is_string( $value ) && '' !== trim( $value ) ? trim( $value ) : null;
	}

	/**
	 * Decides for one request.
	 *
	 * @param string|null $allow       SSM_DB_CONFIG_HEALTH_ALLOW, or null when unset.
	 * @param string|null $token       SSM_DB_CONFIG_HEALTH_TOKEN, or null when unset.
	 * @param string      $remote_addr The client's address (REMOTE_ADDR).
	 * @param string|null $given       The token the request carries, if any.
	 * @return array{allowed: bool, error: string|null} error: why a setting was refused (names
	 *               the setting, never the token), for the error log.
	 */
	public static function decide( ?string $allow, #[\SensitiveParameter] ?string $token, string $remote_addr, #[\SensitiveParameter] ?string $given ): array {
		$errors = array();
		if ( null !== $token && strlen( $token ) < self::TOKEN_MIN_LENGTH ) {
			$errors[] = self::TOKEN . ' is shorter than ' . self::TOKEN_MIN_LENGTH . ' characters; it is ignored';
			$token    = null;
		}
		$blocks = array();
		if ( null !== $allow ) {
			foreach ( preg_split( '/[\s,]+/', $allow, -1, PREG_SPLIT_NO_EMPTY ) as $entry ) {
				$block = self::parse_block( $entry );
				if ( null === $block ) {
					// One bad entry refuses the whole list: a typo must not open more than meant.
					$errors[] = self::ALLOW . ': "' . $entry . '" is not an IP address or CIDR block (e.g. 10.0.0.0/16, 2001:db8::/32); the list is ignored';
					$blocks   = array();
					break;
				}
				$blocks[] = $block;
			}
		}
		$error = array() === $errors ? null : implode( '; ', $errors );
		if ( null !== $token && null !== $given && hash_equals( $token, $given ) ) {
			return array( 'allowed' => true, 'error' => $error );
		}
		$address = self::packed( $remote_addr );
		if ( null !== $address ) {
			foreach ( $blocks as list( $network, $bits ) ) {
				if ( self::in_block( $address, $network, $bits ) ) {
					return array( 'allowed' => true, 'error' => $error );
				}
			}
		}
		return array( 'allowed' => false, 'error' => $error );
	}

	/**
	 * Lets the request through, or answers 404 with nothing in it and ends it. Call first,
	 * before anything else runs: a refused request opens no connection and touches no file.
	 */
	public static function enforce(): void {
		$given = $_SERVER['HTTP_X_HEALTH_TOKEN'] ?? ( $_GET[ self::TOKEN_QUERY ] ?? null ); // phpcs:ignore WordPress.Security.NonceVerification, WordPress.Security.ValidatedSanitizedInput -- compared in constant time, never echoed.
		$verdict = self::decide(
			self::setting( self::ALLOW ),
			self::setting( self::TOKEN ),
			(string) ( $_SERVER['REMOTE_ADDR'] ?? '' ), // phpcs:ignore WordPress.Security.ValidatedSanitizedInput
			is_string( $given ) ? $given : null
		);
		if ( null !== $verdict['error'] ) {
			error_log( 'ssm-db-config health endpoint: ' . $verdict['error'] ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions
		}
		if ( $verdict['allowed'] ) {
			return;
		}
		http_response_code( 404 );
		header( 'Cache-Control: no-store' );
		header( 'Content-Type: text/plain; charset=utf-8' );
		echo "Not Found\n";
		exit;
	}

	/**
	 * "10.0.0.0/16", "2001:db8::/32", "192.0.2.7" or "::1" as [packed network, prefix bits].
	 *
	 * @param string $entry One entry of the list.
	 * @return array{0: string, 1: int}|null Null when it is not an address or block.
	 */
	public static function parse_block( string $entry ): ?array {
		$parts   = explode( '/', $entry );
		$address = self::packed( $parts[0] );
		if ( null === $address || count( $parts ) > 2 ) {
			return null;
		}
		$max = strlen( $address ) * 8;
		if ( 1 === count( $parts ) ) {
			return array( $address, $max );
		}
		if ( 1 !== preg_match( '/^[0-9]{1,3}$/D', $parts[1] ) || (int) $parts[1] > $max ) {
			return null;
		}
		return array( $address, (int) $parts[1] );
	}

	/**
	 * An address in binary (4 or 16 bytes); an IPv4-mapped IPv6 address as IPv4.
	 *
	 * @param string $address Text form.
	 */
	private static function packed( string $address ): ?string {
		$packed = '' === $address ? false : @inet_pton( $address ); // phpcs:ignore WordPress.PHP.NoSilencedErrors -- false is the answer we use.
		if ( false === $packed ) {
			return null;
		}
		if ( 16 === strlen( $packed ) && str_starts_with( $packed, str_repeat( "\0", 10 ) . "\xff\xff" ) ) {
			return substr( $packed, 12 );
		}
		return $packed;
	}

	/**
	 * Whether the first $bits bits of two packed addresses of one family match.
	 *
	 * @param string $address Packed address.
	 * @param string $network Packed network.
	 * @param int    $bits    Prefix length.
	 */
	private static function in_block( string $address, string $network, int $bits ): bool {
		if ( strlen( $address ) !== strlen( $network ) ) {
			return false;
		}
		$bytes = intdiv( $bits, 8 );
		if ( substr( $address, 0, $bytes ) !== substr( $network, 0, $bytes ) ) {
			return false;
		}
		$rest = $bits % 8;
		if ( 0 === $rest ) {
			return true;
		}
		$mask = ( 0xff << ( 8 - $rest ) ) & 0xff;
		return ( ord( $address[ $bytes ] ) & $mask ) === ( ord( $network[ $bytes ] ) & $mask );
	}
}
