<?php
/**
 * SSM_DB_Config_Admin_Page: nonce, then capability, then the action; rendering.
 */
final class AdminPageTest extends SSM_DB_Config_TestCase {
	private string $dir;

	public static function setUpBeforeClass(): void {
		require_once ABSPATH . 'wp-admin/includes/template.php';
	}

	protected function setUp(): void {
		$this->dir = self::temp_dir();
		$_POST     = array();
		$_REQUEST  = array();
		$_SERVER['REQUEST_METHOD'] = 'POST';
	}

	protected function tearDown(): void {
		self::remove_dir( $this->dir );
		$_POST    = array();
		$_REQUEST = array();
		$_SERVER['REQUEST_METHOD'] = 'GET';
		delete_option( SSM_DB_Config_Admin_Page::OPTION_DROPINS );
		wp_set_current_user( 0 );
	}

	private function page(): SSM_DB_Config_Admin_Page {
		return new SSM_DB_Config_Admin_Page( new SSM_DB_Config_Collector( new SSM_DB_Config_Dropins( $this->dir ) ) );
	}

	private static function login( string $login ): void {
		$user = get_user_by( 'login', $login );
		if ( ! $user ) {
			throw new RuntimeException( "no user $login" );
		}
		wp_set_current_user( $user->ID );
	}

	private static function post( array $fields, ?string $nonce_action ): void {
		$_POST = $fields;
		if ( null !== $nonce_action ) {
			$_POST['_wpnonce'] = wp_create_nonce( $nonce_action );
		}
		$_REQUEST = $_POST;
	}

	private function render( SSM_DB_Config_Admin_Page $page ): string {
		ob_start();
		try {
			$page->render();
		} finally {
			$html = (string) ob_get_clean();
		}
		return $html;
	}

	public function test_refresh_without_nonce_is_refused_and_fetches_nothing(): void {
		self::login( 'admin' );
		ssm_db_config();
		$before = self::fetch_count();
		self::post( array( 'ssm_db_config_action' => 'refresh' ), null );
		try {
			$this->page()->handle_action();
			$this->fail( 'a POST without a nonce is refused' );
		} catch ( WPDieException $e ) {
			$this->assertSame( 403, $e->getCode() );
		}
		$this->assertSame( $before, self::fetch_count() );
	}

	public function test_refresh_with_nonce_by_a_subscriber_is_refused_and_fetches_nothing(): void {
		self::login( 'subscriber' );
		ssm_db_config();
		$before = self::fetch_count();
		self::post( array( 'ssm_db_config_action' => 'refresh' ), SSM_DB_Config_Admin_Page::nonce_action( 'refresh' ) );
		try {
			$this->page()->handle_action();
			$this->fail( 'a subscriber is refused' );
		} catch ( WPDieException $e ) {
			$this->assertSame( 403, $e->getCode() );
		}
		$this->assertSame( $before, self::fetch_count() );
	}

	public function test_refresh_by_an_admin_fetches_once_and_the_page_says_so(): void {
		self::login( 'admin' );
		ssm_db_config();
		self::age_cached_value();
		$fetches = ssm_db_config_status()['fetches'];
		self::post( array( 'ssm_db_config_action' => 'refresh' ), SSM_DB_Config_Admin_Page::nonce_action( 'refresh' ) );
		$page = $this->page();
		$page->handle_action();
		$this->assertSame( $fetches + 1, ssm_db_config_status()['fetches'] );
		$html = $this->render( $page );
		$this->assertStringContainsString( 'data-code="fetched"', $html );
		$this->assertStringContainsString( '<span data-field="fetches">' . ( $fetches + 1 ) . '</span>', $html );
		$this->assertNoCanary( $html, 'admin page' );
	}

	public function test_nonce_for_one_action_does_not_authorise_another(): void {
		self::login( 'admin' );
		self::post( array( 'ssm_db_config_action' => 'install', 'dropin' => 'db.php' ), SSM_DB_Config_Admin_Page::nonce_action( 'refresh' ) );
		try {
			$this->page()->handle_action();
			$this->fail( 'the refresh nonce does not install a drop-in' );
		} catch ( WPDieException $e ) {
			$this->assertSame( 403, $e->getCode() );
		}
		$this->assertFileDoesNotExist( $this->dir . '/db.php' );
	}

	public function test_admin_installs_a_dropin_and_it_is_recorded(): void {
		self::login( 'admin' );
		self::post( array( 'ssm_db_config_action' => 'install', 'dropin' => 'db-error.php' ), SSM_DB_Config_Admin_Page::nonce_action( 'install', 'db-error.php' ) );
		$page = $this->page();
		$page->handle_action();
		$this->assertFileExists( $this->dir . '/db-error.php' );
		$this->assertArrayHasKey( 'db-error.php', get_option( SSM_DB_Config_Admin_Page::OPTION_DROPINS ) );
		$html = $this->render( $page );
		$this->assertStringContainsString( 'data-code="installed"', $html );
		$this->assertStringContainsString( 'data-mode="error-page"', $html );
	}

	public function test_unknown_dropin_name_is_refused(): void {
		self::login( 'admin' );
		self::post( array( 'ssm_db_config_action' => 'install', 'dropin' => 'object-cache.php' ), SSM_DB_Config_Admin_Page::nonce_action( 'install', 'object-cache.php' ) );
		try {
			$this->page()->handle_action();
			$this->fail( 'only our drop-ins can be installed' );
		} catch ( WPDieException $e ) {
			$this->assertSame( 400, $e->getCode() );
		}
		$this->assertFileDoesNotExist( $this->dir . '/object-cache.php' );
	}

	public function test_render_shows_status_database_and_dropins_for_an_admin(): void {
		self::login( 'admin' );
		ssm_db_config();
		$html = $this->render( $this->page() );
		$this->assertStringContainsString( '<code>/wp/db</code>', $html );
		$this->assertStringContainsString( 'Refresh now', $html );
		$this->assertStringContainsString( 'data-reason="writer"', $html );
		$this->assertStringContainsString( esc_html( DB_HOST ), $html );
		$this->assertStringContainsString( 'data-dropin="db.php" data-state="absent"', $html );
		$this->assertStringContainsString( 'name="_wpnonce"', $html );
		$this->assertNoCanary( $html, 'admin page' );
	}

	public function test_render_refuses_a_subscriber(): void {
		self::login( 'subscriber' );
		$this->expectException( WPDieException::class );
		$this->expectExceptionCode( 403 );
		$this->render( $this->page() );
	}

	public static function dropin_permissions(): array {
		// SSM_DB_CONFIG_DISALLOW_DROPINS, file mods allowed, multisite, network admin => refusal.
		return array(
			'single site, allowed'                    => array( false, true, false, false, null ),
			'single site, DISALLOW_FILE_MODS'         => array( false, false, false, false, 'file_mods_disallowed' ),
			'single site, SSM_DB_CONFIG_DISALLOW_DROPINS' => array( true, true, false, false, 'dropins_disallowed' ),
			'multisite, site administrator'           => array( false, true, true, false, 'network_admin_only' ),
			'multisite, network administrator'        => array( false, true, true, true, null ),
			'multisite, network admin, no file mods'  => array( false, false, true, true, 'file_mods_disallowed' ),
			'multisite, network admin, no drop-ins'   => array( true, true, true, true, 'dropins_disallowed' ),
		);
	}

	/** @dataProvider dropin_permissions */
	public function test_dropins_refusal_needs_network_rights_and_file_mods( bool $disallowed, bool $file_mods, bool $multisite, bool $network_admin, ?string $refusal ): void {
		$this->assertSame( $refusal, SSM_DB_Config_Admin_Page::dropins_refusal( $disallowed, $file_mods, $multisite, $network_admin ) );
	}

	public function test_database_host_and_user_are_for_network_admins_on_multisite(): void {
		$this->assertTrue( SSM_DB_Config_Admin_Page::may_see_database_identity( false, false ), 'single site administrator' );
		$this->assertFalse( SSM_DB_Config_Admin_Page::may_see_database_identity( true, false ), 'multisite site administrator' );
		$this->assertTrue( SSM_DB_Config_Admin_Page::may_see_database_identity( true, true ), 'network administrator' );
	}

	public function test_install_is_refused_when_file_mods_are_disallowed_and_the_page_says_so(): void {
		self::login( 'admin' );
		// What DISALLOW_FILE_MODS does, through the filter wp_is_file_mod_allowed() applies.
		add_filter( 'file_mod_allowed', '__return_false' );
		try {
			self::post( array( 'ssm_db_config_action' => 'install', 'dropin' => 'db.php' ), SSM_DB_Config_Admin_Page::nonce_action( 'install', 'db.php' ) );
			$page = $this->page();
			try {
				$page->handle_action();
				$this->fail( 'installing is refused' );
			} catch ( WPDieException $e ) {
				$this->assertSame( 403, $e->getCode() );
			}
			$this->assertFileDoesNotExist( $this->dir . '/db.php' );
			$html = $this->render( $page );
			$this->assertStringContainsString( 'data-refusal="file_mods_disallowed"', $html );
			$this->assertStringNotContainsString( 'name="ssm_db_config_action" value="install"', $html );
		} finally {
			remove_filter( 'file_mod_allowed', '__return_false' );
		}
	}

	public function test_get_request_does_nothing(): void {
		self::login( 'admin' );
		$_SERVER['REQUEST_METHOD'] = 'GET';
		$_POST = array( 'ssm_db_config_action' => 'refresh' );
		$before = self::fetch_count();
		$this->page()->handle_action();
		$this->assertSame( $before, self::fetch_count() );
	}
}
