<?php
/**
 * SSM_DB_Config_Site_Health: results in core's shape, the async REST test, debug information.
 */
final class SiteHealthTest extends SSM_DB_Config_TestCase {
	private function health(): SSM_DB_Config_Site_Health {
		return new SSM_DB_Config_Site_Health( new SSM_DB_Config_Collector( new SSM_DB_Config_Dropins( WP_CONTENT_DIR ) ) );
	}

	protected function tearDown(): void {
		wp_set_current_user( 0 );
	}

	private function assertCoreShape( array $result, string $test ): void {
		$this->assertSame( array( 'label', 'status', 'badge', 'description', 'actions', 'test' ), array_keys( $result ) );
		$this->assertContains( $result['status'], array( 'good', 'recommended', 'critical' ) );
		$this->assertSame( array( 'label', 'color' ), array_keys( $result['badge'] ) );
		$this->assertSame( $test, $result['test'] );
		$this->assertNoCanary( $result, $test );
	}

	public function test_tests_are_registered_direct_and_async_with_rest(): void {
		$tests = apply_filters( 'site_status_tests', array( 'direct' => array(), 'async' => array() ) );
		foreach ( array( 'ssm_db_config_extension', 'ssm_db_config_parameter', 'ssm_db_config_fresh' ) as $id ) {
			$this->assertIsCallable( $tests['direct'][ $id ]['test'], $id );
		}
		$async = $tests['async']['ssm_db_config_database'];
		$this->assertTrue( $async['has_rest'] );
		$this->assertStringContainsString( 'ssm-db-config/v1/site-health/database', $async['test'] );
		$this->assertIsCallable( $async['async_direct_test'] );
	}

	public function test_direct_tests_are_good_with_the_extension_and_a_fresh_value(): void {
		ssm_db_config();
		$health = $this->health();
		foreach ( array( 'ssm_db_config_extension' => 'test_extension', 'ssm_db_config_parameter' => 'test_parameter', 'ssm_db_config_fresh' => 'test_fresh' ) as $id => $method ) {
			$result = $health->$method();
			$this->assertCoreShape( $result, $id );
			$this->assertSame( 'good', $result['status'], $id );
		}
	}

	public function test_database_test_is_good_against_the_writer(): void {
		$result = $this->health()->test_database();
		$this->assertCoreShape( $result, 'ssm_db_config_database' );
		$this->assertSame( 'good', $result['status'] );
	}

	public function test_rest_route_refuses_anonymous_and_answers_an_admin(): void {
		$request = new WP_REST_Request( 'GET', '/ssm-db-config/v1/site-health/database' );
		wp_set_current_user( 0 );
		$this->assertSame( 401, rest_do_request( $request )->get_status() );
		wp_set_current_user( get_user_by( 'login', 'subscriber' )->ID );
		$this->assertSame( 403, rest_do_request( $request )->get_status() );
		wp_set_current_user( get_user_by( 'login', 'admin' )->ID );
		$response = rest_do_request( $request );
		$this->assertSame( 200, $response->get_status() );
		$this->assertCoreShape( $response->get_data(), 'ssm_db_config_database' );
		$this->assertSame( 'good', $response->get_data()['status'] );
	}

	public function test_debug_information_is_private_and_hosts_and_users_are_private(): void {
		$info    = apply_filters( 'debug_information', array() );
		$section = $info['ssm-db-config'];
		$this->assertTrue( $section['private'] );
		foreach ( array( 'host', 'user', 'parameter' ) as $field ) {
			$this->assertTrue( $section['fields'][ $field ]['private'], $field );
		}
		$this->assertSame( 'Yes', $section['fields']['loaded']['value'] );
		$this->assertNoCanary( $info, 'debug information' );
	}
}
