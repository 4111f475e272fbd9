<?php
/**
 * Must-use plugin of the test site only (copied by tests/suites/wordpress.sh): removes the
 * core Site Health tests that call wordpress.org or make loopback requests to this site.
 * The site has one php-fpm worker, so a loopback request waits for the worker that sent it
 * until it times out, and Site Health would spend a minute before it shows any result.
 */
defined( 'ABSPATH' ) || exit;

add_filter(
	'site_status_tests',
	static function ( array $tests ): array {
		foreach ( array( 'dotorg_communication', 'background_updates', 'loopback_requests', 'https_status', 'authorization_header', 'page_cache', 'rest_availability' ) as $id ) {
			unset( $tests['async'][ $id ], $tests['direct'][ $id ] );
		}
		return $tests;
	}
);
