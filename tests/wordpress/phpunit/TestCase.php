<?php
/**
 * Helpers shared by the plugin's tests: the SSM parameters (through moto), the proxy's
 * request count, the canary password.
 */

use PHPUnit\Framework\TestCase;

abstract class SSM_DB_Config_TestCase extends TestCase {
	/** Puts a SecureString parameter into moto (directly, uncounted by the proxy). */
	protected static function ssm_put( string $name, #[\SensitiveParameter] string $value ): void {
		self::moto( 'PutParameter', array( 'Name' => $name, 'Value' => $value, 'Type' => 'SecureString', 'Overwrite' => true ) );
	}

	protected static function moto( string $action, array $body ): array {
		$context = stream_context_create(
			array(
				'http' => array(
					'method'        => 'POST',
					'header'        => "X-Amz-Target: AmazonSSM.$action\r\nContent-Type: application/x-amz-json-1.1\r\n"
						. "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=x\r\n",
					'content'       => json_encode( $body ),
					'timeout'       => 5,
					'ignore_errors' => true,
				),
			)
		);
		$answer = file_get_contents( getenv( 'MOTO_URL' ) . '/', false, $context );
		if ( false === $answer ) {
			throw new RuntimeException( "moto did not answer $action" );
		}
		return (array) json_decode( $answer, true );
	}

	/** GetParameter requests the counting proxy has forwarded so far. */
	protected static function fetch_count(): int {
		$counts = json_decode( (string) file_get_contents( getenv( 'PROXY_URL' ) . '/__proxy/counts' ), true );
		return (int) ( $counts['by_target']['AmazonSSM.GetParameter'] ?? 0 );
	}

	/**
	 * Lets the cached value grow older than one second. The extension answers
	 * ssm_db_config_refresh() with a value fetched within the last second (by any process)
	 * instead of fetching again; a test that expects a fetch waits this out first.
	 */
	protected static function age_cached_value(): void {
		usleep( 1100000 );
	}

	protected static function canary(): string {
		$canary = (string) getenv( 'CANARY' );
		if ( strlen( $canary ) < 16 ) {
			throw new RuntimeException( 'CANARY is not set' );
		}
		return $canary;
	}

	protected static function port( string $name ): int {
		$port = (int) getenv( $name );
		if ( $port <= 0 ) {
			throw new RuntimeException( "$name is not set" );
		}
		return $port;
	}

	/** Asserts that $haystack (anything, serialized) does not contain the canary password. */
	protected function assertNoCanary( $haystack, string $what ): void {
		$text = is_string( $haystack ) ? $haystack : print_r( $haystack, true ) . serialize( $haystack );
		// Not assertStringNotContainsString(): its failure message would print the password.
		$this->assertFalse( str_contains( $text, self::canary() ), "$what contains the database password" );
	}

	protected static function temp_dir(): string {
		$dir = sys_get_temp_dir() . '/ssm-db-config-phpunit-' . bin2hex( random_bytes( 6 ) );
		mkdir( $dir, 0755 );
		return $dir;
	}

	protected static function remove_dir( string $dir ): void {
		foreach ( (array) glob( $dir . '/{,.}*', GLOB_BRACE ) as $file ) {
			if ( is_file( (string) $file ) ) {
				unlink( (string) $file );
			}
		}
		@rmdir( $dir );
	}
}
