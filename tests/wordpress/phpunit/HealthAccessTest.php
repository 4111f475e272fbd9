<?php
/**
 * SSM_DB_Config_Health_Access (who may ask the health endpoints) and SSM_DB_Config_State_Dir
 * (their private state folder).
 */
final class HealthAccessTest extends SSM_DB_Config_TestCase {
	const TOKEN = 'a-token-of-24-characters';

	public static function setUpBeforeClass(): void {
		require_once WP_PLUGIN_DIR . '/ssm-db-config/includes/class-state-dir.php';
	}

	public static function requests(): array {
		$list = '10.0.0.0/16, 2001:db8::/32 192.0.2.7';
		return array(
			'nothing set: closed'                  => array( null, null, '127.0.0.1', null, false ),
			'nothing set, any token: closed'       => array( null, null, '127.0.0.1', self::TOKEN, false ),
			'address in a /16'                     => array( $list, null, '10.0.255.1', null, true ),
			'address outside the /16'              => array( $list, null, '10.1.0.1', null, false ),
			'single address'                       => array( $list, null, '192.0.2.7', null, true ),
			'neighbour of a single address'        => array( $list, null, '192.0.2.8', null, false ),
			'IPv6 in a /32'                        => array( $list, null, '2001:db8:ffff::1', null, true ),
			'IPv6 outside'                         => array( $list, null, '2001:db9::1', null, false ),
			'IPv4-mapped IPv6 in a /16'            => array( $list, null, '::ffff:10.0.3.4', null, true ),
			'odd prefix /13 inside'                => array( '10.8.0.0/13', null, '10.15.255.255', null, true ),
			'odd prefix /13 outside'               => array( '10.8.0.0/13', null, '10.16.0.0', null, false ),
			'/0 allows every IPv4'                 => array( '0.0.0.0/0', null, '203.0.113.9', null, true ),
			'IPv4 /0 does not allow IPv6'          => array( '0.0.0.0/0', null, '2001:db8::1', null, false ),
			'no REMOTE_ADDR'                       => array( $list, null, '', null, false ),
			'token matches'                        => array( null, self::TOKEN, '203.0.113.9', self::TOKEN, true ),
			'token differs'                        => array( null, self::TOKEN, '203.0.113.9', self::TOKEN . 'x', false ),
			'token missing'                        => array( null, self::TOKEN, '203.0.113.9', null, false ),
			'token or address: address'            => array( $list, self::TOKEN, '10.0.0.1', null, true ),
			'token or address: token'              => array( $list, self::TOKEN, '203.0.113.9', self::TOKEN, true ),
			'short token is ignored'               => array( null, 'short', '203.0.113.9', 'short', false ),
			'malformed entry closes the whole list'=> array( '10.0.0.0/8, 10.0.0.0/33', null, '10.0.0.1', null, false ),
			'a name is not an address'             => array( 'localhost', null, '127.0.0.1', null, false ),
		);
	}

	/** @dataProvider requests */
	public function test_decide_allows_listed_addresses_or_the_token_only( ?string $allow, ?string $token, string $remote, ?string $given, bool $allowed ): void {
		$this->assertSame( $allowed, SSM_DB_Config_Health_Access::decide( $allow, $token, $remote, $given )['allowed'] );
	}

	public function test_refused_settings_are_named_and_the_token_never_is(): void {
		$bad = SSM_DB_Config_Health_Access::decide( '10.0.0.0/33', 'short-secret', '10.0.0.1', null )['error'];
		$this->assertStringContainsString( 'SSM_DB_CONFIG_HEALTH_ALLOW: "10.0.0.0/33"', (string) $bad );
		$this->assertStringContainsString( 'SSM_DB_CONFIG_HEALTH_TOKEN is shorter than 16', (string) $bad );
		$this->assertStringNotContainsString( 'short-secret', (string) $bad );
		$this->assertNull( SSM_DB_Config_Health_Access::decide( '10.0.0.0/8', self::TOKEN, '10.0.0.1', null )['error'] );
	}

	public function test_setting_reads_a_server_variable(): void {
		$_SERVER['SSM_DB_CONFIG_TEST_SETTING'] = ' 10.0.0.0/8 ';
		try {
			$this->assertSame( '10.0.0.0/8', SSM_DB_Config_Health_Access::setting( 'SSM_DB_CONFIG_TEST_SETTING' ) );
		} finally {
			unset( $_SERVER['SSM_DB_CONFIG_TEST_SETTING'] );
		}
		$this->assertNull( SSM_DB_Config_Health_Access::setting( 'SSM_DB_CONFIG_TEST_SETTING' ) );
	}

	public function test_state_dir_is_made_private(): void {
		$parent = self::temp_dir();
		try {
			$dir = SSM_DB_Config_State_Dir::open( $parent . '/state', $why );
			$this->assertSame( $parent . '/state', $dir, (string) $why );
			$this->assertSame( 0700, fileperms( $dir ) & 0777 );
			$this->assertTrue( SSM_DB_Config_State_Dir::write( $dir . '/x.json', array( 'time' => 1.5 ) ) );
			$this->assertSame( array( 'time' => 1.5 ), SSM_DB_Config_State_Dir::read( $dir . '/x.json' ) );
			$this->assertSame( array( $dir . '/x.json' ), glob( $dir . '/*' ), 'no temporary file is left' );
			unlink( $dir . '/x.json' );
			rmdir( $dir );
		} finally {
			self::remove_dir( $parent );
		}
	}

	public function test_state_dir_open_to_others_a_symlink_or_a_file_is_refused(): void {
		$parent = self::temp_dir();
		try {
			mkdir( $parent . '/open', 0777 );
			chmod( $parent . '/open', 0777 );
			$this->assertNull( SSM_DB_Config_State_Dir::open( $parent . '/open', $why ) );
			$this->assertStringContainsString( 'closed to others', (string) $why );

			mkdir( $parent . '/real', 0700 );
			symlink( $parent . '/real', $parent . '/link' );
			$this->assertNull( SSM_DB_Config_State_Dir::open( $parent . '/link', $why ) );
			$this->assertStringContainsString( 'symlink', (string) $why );

			touch( $parent . '/file' );
			$this->assertNull( SSM_DB_Config_State_Dir::open( $parent . '/file', $why ) );

			if ( 0 === posix_geteuid() ) {
				mkdir( $parent . '/theirs', 0700 );
				chown( $parent . '/theirs', 'nobody' );
				$this->assertNull( SSM_DB_Config_State_Dir::open( $parent . '/theirs', $why ) );
				$this->assertStringContainsString( 'owned by uid', (string) $why );
				rmdir( $parent . '/theirs' );
			}
			rmdir( $parent . '/open' );
			unlink( $parent . '/link' );
			rmdir( $parent . '/real' );
		} finally {
			self::remove_dir( $parent );
		}
	}

	/**
	 * The endpoints on a bare PHP (`php -n`: no ctype, no extension, nothing but the core) from
	 * an allowed address: whatever they cannot do, they never answer 200.
	 */
	public function test_endpoints_on_a_bare_php_never_answer_ok(): void {
		$socket = stream_socket_server( 'tcp://127.0.0.1:0' );
		$port   = (int) substr( (string) stream_socket_get_name( $socket, false ), strlen( '127.0.0.1:' ) );
		fclose( $socket );
		$root    = WP_PLUGIN_DIR . '/ssm-db-config';
		$command = 'exec ' . escapeshellarg( PHP_BINARY ) . ' -n -S 127.0.0.1:' . $port . ' -t ' . escapeshellarg( $root );
		$env     = array(
			'PATH'                       => (string) getenv( 'PATH' ),
			'SSM_DB_CONFIG_HEALTH_ALLOW' => '127.0.0.0/8 ::1/128',
		);
		$server  = proc_open( $command, array( 0 => array( 'file', '/dev/null', 'r' ), 1 => array( 'file', '/dev/null', 'w' ), 2 => array( 'file', '/dev/null', 'w' ) ), $pipes, null, $env );
		try {
			$deadline = microtime( true ) + 10;
			$probe    = @fsockopen( '127.0.0.1', $port, $errno, $errstr, 0.2 );
			while ( false === $probe && microtime( true ) < $deadline ) {
				usleep( 20000 );
				$probe = @fsockopen( '127.0.0.1', $port, $errno, $errstr, 0.2 );
			}
			$this->assertNotFalse( $probe, 'php -S started' );
			fclose( $probe );
			foreach ( array( 'live.php', 'db.php' ) as $endpoint ) {
				$context = stream_context_create( array( 'http' => array( 'ignore_errors' => true, 'timeout' => 10 ) ) );
				$body    = (string) file_get_contents( "http://127.0.0.1:$port/health/$endpoint", false, $context );
				$status  = $http_response_header[0] ?? '';
				$this->assertStringContainsString( ' 503 ', $status, "$endpoint: $status $body" );
				$this->assertStringNotContainsString( 'Fatal', $body, $endpoint );
			}
		} finally {
			proc_terminate( $server );
			proc_close( $server );
		}
	}
}
