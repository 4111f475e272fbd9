<?php
/**
 * SSM_DB_Config_Db_Probe against the run's real servers.
 */
final class DbProbeTest extends SSM_DB_Config_TestCase {
	private static function config( string $engine, int $port, #[\SensitiveParameter] ?string $password = null ): array {
		$mysql = 'mysql' === $engine;
		return array(
			'DB_HOST'     => '127.0.0.1:' . $port,
			'DB_PORT'     => $port,
			'DB_USER'     => $mysql ? 'wp' : 'app',
			'DB_PASSWORD' => $password ?? self::canary(),
			'DB_NAME'     => $mysql ? 'wp' : 'app',
			'DB_ENGINE'   => $engine,
		);
	}

	private static function probe( array $config, float $budget = 1.5, array $options = array() ): SSM_DB_Config_Probe_Result {
		return ( new SSM_DB_Config_Db_Probe() )->check( $config, microtime( true ) + $budget, $options );
	}

	private static function tls_file( string $name ): string {
		$file = getenv( 'TLS' ) . '/' . $name;
		if ( ! is_file( $file ) ) {
			throw new RuntimeException( "$file is missing (TLS must name the run's certificates)" );
		}
		return $file;
	}

	public function test_mariadb_requiring_tls_is_writer_with_ssl_mode_required(): void {
		$result = self::probe( self::config( 'mysql', self::port( 'MT_PORT' ) ), 1.5, array( 'ssl-mode' => 'REQUIRED' ) );
		$this->assertSame( SSM_DB_Config_Probe_Result::WRITER, $result->reason, (string) $result->detail );
	}

	public function test_mariadb_requiring_tls_is_writer_when_verified_against_its_ca(): void {
		foreach ( array( array( 'ssl-mode' => 'VERIFY_IDENTITY', 'ssl-ca' => self::tls_file( 'ca.pem' ) ), array( 'ssl_ca' => self::tls_file( 'ca.pem' ) ) ) as $options ) {
			$result = self::probe( self::config( 'mysql', self::port( 'MT_PORT' ) ), 1.5, $options );
			$this->assertSame( SSM_DB_Config_Probe_Result::WRITER, $result->reason, json_encode( $options ) . ' ' . $result->detail );
		}
	}

	public function test_mariadb_requiring_tls_refuses_a_certificate_of_another_ca_and_plain_text(): void {
		$result = self::probe( self::config( 'mysql', self::port( 'MT_PORT' ) ), 1.5, array( 'ssl-mode' => 'VERIFY_CA', 'ssl-ca' => self::tls_file( 'other-ca.pem' ) ) );
		$this->assertSame( SSM_DB_Config_Probe_Result::CONNECT_FAILED, $result->reason );
		$result = self::probe( self::config( 'mysql', self::port( 'MT_PORT' ) ) );
		$this->assertSame( SSM_DB_Config_Probe_Result::CONNECT_FAILED, $result->reason, 'no TLS option: plain text, which the server refuses' );
		$this->assertNoCanary( $result, 'probe result' );
	}

	public function test_mariadb_on_ipv6_loopback_is_writer(): void {
		$port   = self::port( 'M6_PORT' );
		$config = self::config( 'mysql', $port );
		foreach ( array( "[::1]:$port", '[::1]' ) as $db_host ) {
			$config['DB_HOST'] = $db_host;
			$result            = self::probe( $config );
			$this->assertSame( SSM_DB_Config_Probe_Result::WRITER, $result->reason, $db_host . ' ' . $result->detail );
		}
	}

	public static function tls_options(): array {
		$ssl    = MYSQLI_CLIENT_SSL;
		$nover  = MYSQLI_CLIENT_SSL_DONT_VERIFY_SERVER_CERT;
		$verify = MYSQLI_CLIENT_SSL_VERIFY_SERVER_CERT;
		return array(
			'nothing: plain text'                      => array( array(), null, 0, false, null ),
			'ssl-mode=DISABLED'                        => array( array( 'ssl-mode' => 'disabled' ), $ssl, 0, false, null ),
			'ssl-mode=REQUIRED: not verified'          => array( array( 'ssl-mode' => 'REQUIRED' ), null, $ssl | $nover, true, null ),
			'ssl_mode=VERIFY_CA'                       => array( array( 'ssl_mode' => 'VERIFY_CA', 'ssl_ca' => '/ca.pem' ), null, $ssl | $verify, true, null ),
			'ssl-ca alone: verified'                   => array( array( 'ssl-ca' => '/ca.pem' ), null, $ssl | $verify, true, null ),
			'MYSQL_CLIENT_FLAGS with SSL: as mysqlnd, not verified' => array( array(), $ssl, $ssl | $nover, true, null ),
			'MYSQL_CLIENT_FLAGS SSL and verify'        => array( array(), $ssl | $verify, $ssl | $verify, true, null ),
			'MYSQL_CLIENT_FLAGS SSL, do not verify'    => array( array(), $ssl | $nover | MYSQLI_CLIENT_COMPRESS, $ssl | $nover | MYSQLI_CLIENT_COMPRESS, true, null ),
			'ssl-mode=PREFERRED is refused'            => array( array( 'ssl-mode' => 'PREFERRED' ), null, 0, false, 'ssl-mode "PREFERRED"' ),
			'ssl-mode=yes is refused'                  => array( array( 'ssl-mode' => 'yes' ), null, 0, false, 'ssl-mode "yes"' ),
		);
	}

	/** @dataProvider tls_options */
	public function test_mysql_tls_follows_the_value_and_mysql_client_flags( array $options, ?int $client_flags, int $flags, bool $tls, ?string $error ): void {
		$got = SSM_DB_Config_Db_Probe::mysql_tls( $options, $client_flags );
		$this->assertSame( $flags, $got['flags'] );
		$this->assertSame( $tls, null !== $got['ssl'] );
		if ( null === $error ) {
			$this->assertNull( $got['error'] );
		} else {
			$this->assertStringContainsString( $error, (string) $got['error'] );
		}
	}

	public static function hosts(): array {
		return array(
			'IPv4 with port'      => array( '127.0.0.1:3307', 3306, '127.0.0.1', 3307 ),
			'name without port'   => array( 'db.example', 5432, 'db.example', 5432 ),
			'name with port'      => array( 'db.example:6432', 5432, 'db.example', 6432 ),
			'IPv6 in brackets'    => array( '[2001:db8::1]:5432', 3306, '2001:db8::1', 5432 ),
			'IPv6 without port'   => array( '[::1]', 3306, '::1', 3306 ),
			'bare IPv6 unchanged' => array( '2001:db8::1', 3306, '2001:db8::1', 3306 ),
		);
	}

	/** @dataProvider hosts */
	public function test_split_host_separates_host_and_port( string $db_host, int $default, string $host, int $port ): void {
		$this->assertSame( array( $host, $port ), SSM_DB_Config_Db_Probe::split_host( $db_host, $default ) );
	}

	public function test_mariadb_writer_is_reported_writer(): void {
		$result = self::probe( self::config( 'mysql', self::port( 'MA_PORT' ) ) );
		$this->assertSame( SSM_DB_Config_Probe_Result::WRITER, $result->reason, (string) $result->detail );
		$this->assertTrue( $result->reachable );
		$this->assertTrue( $result->writer );
		$this->assertGreaterThan( 0.0, $result->latency_ms );
	}

	public function test_mariadb_read_only_is_reported_read_only(): void {
		$root = new mysqli( null, (string) getenv( 'DB_ADMIN' ), '', '', 0, getenv( 'MB_SOCK' ) ?: null );
		$root->query( 'SET GLOBAL read_only = 1' );
		try {
			$result = self::probe( self::config( 'mysql', self::port( 'MB_PORT' ) ) );
		} finally {
			$root->query( 'SET GLOBAL read_only = 0' );
		}
		$this->assertSame( SSM_DB_Config_Probe_Result::READ_ONLY, $result->reason );
		$this->assertTrue( $result->reachable );
		$this->assertFalse( $result->writer );
	}

	public function test_postgresql_primary_is_reported_writer(): void {
		$result = self::probe( self::config( 'postgresql', self::port( 'PGP_PORT' ) ) );
		$this->assertSame( SSM_DB_Config_Probe_Result::WRITER, $result->reason, (string) $result->detail );
		$this->assertTrue( $result->writer );
	}

	public function test_postgresql_standby_is_reported_in_recovery(): void {
		$result = self::probe( self::config( 'postgresql', self::port( 'PGS_PORT' ) ) );
		$this->assertSame( SSM_DB_Config_Probe_Result::IN_RECOVERY, $result->reason, (string) $result->detail );
		$this->assertTrue( $result->reachable );
		$this->assertFalse( $result->writer );
	}

	public function test_closed_port_fails_fast_for_both_engines(): void {
		foreach ( array( 'mysql', 'postgresql' ) as $engine ) {
			$start  = microtime( true );
			$result = self::probe( self::config( $engine, self::port( 'CLOSED_PORT' ) ) );
			$this->assertSame( SSM_DB_Config_Probe_Result::CONNECT_FAILED, $result->reason, $engine );
			$this->assertLessThan( 0.5, microtime( true ) - $start, $engine );
		}
	}

	public function test_wrong_password_fails_and_detail_does_not_echo_it(): void {
		$wrong = self::canary() . '-wrong';
		foreach ( array( 'mysql' => 'MA_PORT', 'postgresql' => 'PGP_PORT' ) as $engine => $port ) {
			$result = self::probe( self::config( $engine, self::port( $port ), $wrong ) );
			$this->assertSame( SSM_DB_Config_Probe_Result::CONNECT_FAILED, $result->reason, $engine );
			$this->assertNoCanary( $result, "$engine probe result" );
		}
	}

	public function test_silent_server_is_bounded_by_the_deadline(): void {
		$server = stream_socket_server( 'tcp://127.0.0.1:0' );
		$port   = (int) substr( (string) stream_socket_get_name( $server, false ), strrpos( (string) stream_socket_get_name( $server, false ), ':' ) + 1 );
		try {
			$start  = microtime( true );
			$result = self::probe( self::config( 'postgresql', $port ), 0.5 );
			$this->assertSame( SSM_DB_Config_Probe_Result::TIMEOUT, $result->reason );
			$this->assertLessThan( 0.8, microtime( true ) - $start, 'PostgreSQL (libpq alone would wait 2 s)' );

			$start  = microtime( true );
			$result = self::probe( self::config( 'mysql', $port ), 1.4 );
			$this->assertContains( $result->reason, array( SSM_DB_Config_Probe_Result::TIMEOUT, SSM_DB_Config_Probe_Result::CONNECT_FAILED ) );
			$this->assertLessThan( 1.5, microtime( true ) - $start, 'MySQL' );
		} finally {
			fclose( $server );
		}
	}

	public function test_unknown_engine_is_reported_without_connecting(): void {
		$config              = self::config( 'mysql', self::port( 'MA_PORT' ) );
		$config['DB_ENGINE'] = 'oracle';
		$this->assertSame( SSM_DB_Config_Probe_Result::UNKNOWN_ENGINE, self::probe( $config )->reason );
	}

	public function test_scrub_removes_plain_and_percent_encoded_password(): void {
		$this->assertSame( 'a *** b *** c', SSM_DB_Config_Db_Probe::scrub( 'a p@ss/w b p%40ss%2Fw c', 'p@ss/w' ) );
		$this->assertNull( SSM_DB_Config_Db_Probe::scrub( null, 'x' ) );
		$this->assertSame( 'unchanged', SSM_DB_Config_Db_Probe::scrub( 'unchanged', '' ) );
	}
}
