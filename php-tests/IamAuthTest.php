<?php

declare(strict_types=1);

namespace SsmDbConfig\Tests;

/**
 * `auth=iam`: DB_PASSWORD is an IAM database authentication token made with
 * the credentials the extension reads SSM with. Each token is checked the
 * way RDS checks it: tests/support/rds_token.py --verify recomputes its
 * SigV4 signature with the test's AWS keys (botocore's signer) and checks
 * its expiry.
 */
final class IamAuthTest extends TestCase
{
    private ?Fpm $fpm = null;

    protected function tearDown(): void
    {
        if ($this->fpm !== null) {
            $this->fpm->stop();
            $logs = $this->fpm->logs();
            self::assertStringNotContainsString('X-Amz-Signature', $logs, 'no token in php-fpm logs');
            self::assertDoesNotMatchRegularExpression('/SIGSEGV|SIGABRT|SIGBUS/', $logs, 'no worker crashed');
        }
        parent::tearDown();
    }

    private const RDS_HOST = 'shop.cluster-abc.eu-west-1.rds.amazonaws.com';

    /** What wp-config.php sees after ssm_db_config_define(), the token included (it is not the canary). */
    private const DEFINE_CODE = '$flagsBefore = defined("MYSQL_CLIENT_FLAGS") ? MYSQL_CLIENT_FLAGS : null; '
        . '$t0 = time(); ssm_db_config_define(%s); $s = ssm_db_config_status(); '
        . 'ob_start(); phpinfo(INFO_MODULES); $info = ob_get_clean(); '
        . '$result = ["host" => DB_HOST, "user" => DB_USER, "token" => DB_PASSWORD, "signed_from" => $t0, "now" => time(), '
        . '"flags" => defined("MYSQL_CLIENT_FLAGS") ? MYSQL_CLIENT_FLAGS : null, "flags_before" => $flagsBefore, '
        . '"auth" => $s["auth"], "iam_host" => $s["iam_host"], "token_age" => $s["iam_token_age_seconds"], '
        . '"token_in_status" => str_contains(json_encode($s), substr(DB_PASSWORD, -64)), '
        . '"token_in_phpinfo" => str_contains($info, substr(DB_PASSWORD, -64))];';

    /**
     * @param list<array{token: string, now: int}> $tokens
     * @return list<array<string, mixed>>
     */
    private static function verify(array $tokens): array
    {
        $input = array_map(fn ($t) => [
            'token' => $t['token'],
            'access_key' => (string) getenv('AWS_ACCESS_KEY_ID'),
            'secret_key' => (string) getenv('AWS_SECRET_ACCESS_KEY'),
            'now' => $t['now'],
        ], $tokens);
        $root = dirname(__DIR__);
        $proc = proc_open(
            [(string) getenv('SSM_TEST_PYTHON'), "$root/tests/support/rds_token.py", '--verify'],
            [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']],
            $pipes
        );
        fwrite($pipes[0], json_encode($input));
        fclose($pipes[0]);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        self::assertSame(0, proc_close($proc), "rds_token.py --verify failed: $err");
        return json_decode((string) $out, true);
    }

    private function define(string $value, array $before = []): array
    {
        $name = $this->parameterName('iam');
        self::$moto->putParameter($name, $value);
        $code = implode(' ', $before) . ' ' . sprintf(self::DEFINE_CODE, var_export($name, true));
        return PhpProcess::json($code);
    }

    public function test_mysql_token_verifies_and_tls_flag_is_defined(): void
    {
        $r = $this->define('mysql://wp_iam@' . self::RDS_HOST . ':3306/shop?auth=iam');
        self::assertSame(self::RDS_HOST . ':3306', $r['host'] ?? $r);
        self::assertSame('wp_iam', $r['user']);
        self::assertSame(2048, $r['flags'], 'MYSQL_CLIENT_FLAGS = MYSQLI_CLIENT_SSL');
        self::assertSame(MYSQLI_CLIENT_SSL, 2048);
        self::assertStringStartsWith(self::RDS_HOST . ':3306/?Action=connect&DBUser=wp_iam&', $r['token']);
        $v = self::verify([['token' => $r['token'], 'now' => $r['now']]])[0];
        self::assertTrue($v['signature_ok'], 'the signature is the one the test credentials make');
        self::assertTrue($v['unexpired']);
        self::assertSame(['wp_iam', self::RDS_HOST, 3306, 'eu-west-1', 'rds-db'], [$v['user'], $v['host'], $v['port'], $v['region'], $v['service']]);
        self::assertGreaterThanOrEqual($r['signed_from'] - 1, $v['time'], 'signed during the request that fetched');
        self::assertSame('iam', $r['auth']);
        self::assertSame(self::RDS_HOST, $r['iam_host']);
        self::assertLessThan(60, $r['token_age']);
        self::assertFalse($r['token_in_status'], 'the token is a secret: not in the status array');
        self::assertFalse($r['token_in_phpinfo'], 'nor in phpinfo()');
    }

    public function test_a_token_signed_with_other_keys_is_refused_by_the_verifier(): void
    {
        // The verifier itself can fail: a token from other credentials does not pass.
        $r = $this->define('mysql://wp_iam@' . self::RDS_HOST . '/shop?auth=iam');
        $forged = preg_replace('/X-Amz-Signature=[0-9a-f]{4}/', 'X-Amz-Signature=0000', $r['token']);
        $v = self::verify([['token' => $forged, 'now' => $r['now']], ['token' => $r['token'], 'now' => $r['now'] + 901]]);
        self::assertFalse($v[0]['signature_ok']);
        self::assertFalse($v[1]['unexpired'], 'expired after 900 s');
    }

    public function test_mysql_client_flags_already_defined_are_kept(): void
    {
        $r = $this->define('mysql://wp_iam@' . self::RDS_HOST . '/shop?auth=iam', ['define("MYSQL_CLIENT_FLAGS", 2048 | 64);']);
        self::assertSame(2048 | 64, $r['flags'] ?? $r);
        self::assertSame(2048 | 64, $r['flags_before']);
    }

    public function test_mysql_client_flags_already_defined_without_tls_are_refused_defining_nothing(): void
    {
        $name = $this->parameterName('iam-flags');
        self::$moto->putParameter($name, 'mysql://wp_iam@' . self::RDS_HOST . '/shop?auth=iam');
        foreach (['64', '"2048"'] as $flags) {
            $r = PhpProcess::json(sprintf(
                'define("MYSQL_CLIENT_FLAGS", %s); try { ssm_db_config_define(%s); $result = "defined"; } '
                . 'catch (SsmDbConfigException $e) { $result = ["code" => $e->getCode(), "message" => $e->getMessage(), "db_host" => defined("DB_HOST"), "db_password" => defined("DB_PASSWORD")]; }',
                $flags,
                var_export($name, true)
            ));
            self::assertIsArray($r, $flags);
            self::assertSame(\SsmDbConfigException::BAD_CONFIGURATION, $r['code'], $flags);
            self::assertStringContainsString('MYSQL_CLIENT_FLAGS is already defined without MYSQLI_CLIENT_SSL', $r['message']);
            self::assertFalse($r['db_host'], 'nothing defined');
            self::assertFalse($r['db_password'], 'nothing defined');
        }
    }

    public function test_iam_host_signs_for_the_rds_endpoint_behind_a_cname(): void
    {
        $r = $this->define('mysql://wp_iam@db.shop.example:3307/shop?auth=iam&iam_host=' . self::RDS_HOST);
        self::assertSame('db.shop.example:3307', $r['host'] ?? $r, 'the connection goes to the CNAME');
        self::assertStringStartsWith(self::RDS_HOST . ':3307/?Action=connect&DBUser=wp_iam&', $r['token']);
        $v = self::verify([['token' => $r['token'], 'now' => $r['now']]])[0];
        self::assertTrue($v['signature_ok']);
        self::assertSame(self::RDS_HOST, $r['iam_host']);
    }

    public function test_postgresql_token_uses_the_extension_region_for_other_names_and_defines_no_mysql_flags(): void
    {
        $r = $this->define('{"engine":"postgres","host":"pg.internal.example","username":"wp","dbname":"shop","auth":"iam","sslmode":"verify-full"}');
        self::assertArrayHasKey('flags', $r, json_encode(array_diff_key($r, ['token' => 1])));
        self::assertNull($r['flags'], 'no MYSQL_CLIENT_FLAGS for PostgreSQL');
        $v = self::verify([['token' => $r['token'], 'now' => $r['now']]])[0];
        self::assertTrue($v['signature_ok']);
        self::assertSame(['pg.internal.example', 5432, (string) getenv('AWS_REGION') ?: 'us-east-1'], [$v['host'], $v['port'], $v['region']]);
    }

    public function test_password_with_auth_iam_is_refused_naming_the_fix(): void
    {
        $name = $this->parameterName('iam-password');
        self::$moto->putParameter($name, 'mysql://wp_iam:' . rawurlencode(self::$canary) . '@' . self::RDS_HOST . '/shop?auth=iam');
        $r = PhpProcess::json('$result = ssm_db_config(' . var_export($name, true) . ');');
        self::assertSame('SsmDbConfigException', $r['exception'] ?? $r);
        self::assertSame(6, $r['code'], 'INVALID_VALUE');
        self::assertStringContainsString('auth=iam', $r['message']);
        self::assertStringContainsString('remove it', $r['message']);
        self::assertStringNotContainsString(self::$canary, $r['message'] . $r['_stderr']);
    }

    public function test_postgresql_without_sslmode_is_refused_naming_the_option(): void
    {
        $name = $this->parameterName('iam-nossl');
        self::$moto->putParameter($name, 'postgresql://wp@' . self::RDS_HOST . ':5432/shop?auth=iam&sslmode=prefer');
        $r = PhpProcess::json('$result = ssm_db_config(' . var_export($name, true) . ');');
        self::assertSame(6, $r['code'] ?? $r);
        self::assertStringContainsString('sslmode=require', $r['message']);
    }

    /**
     * php-fpm with kept constants: a new token (here made with each refresh,
     * ssm_db_config.ttl = 1 s) replaces DB_PASSWORD between requests, with
     * MYSQL_CLIENT_FLAGS defined in every request, and each token verifies.
     */
    public function test_fpm_kept_constants_take_each_new_token_between_requests(): void
    {
        $name = $this->parameterName('iam-fpm');
        self::$moto->putParameter($name, 'mysql://wp_iam@' . self::RDS_HOST . '/shop?auth=iam');
        $this->fpm = Fpm::start(['ssm_db_config.parameter' => $name, 'ssm_db_config.ttl' => '1',
            'ssm_db_config.define_constants' => '1', 'ssm_db_config.shared_dir' => 'off'], Fpm::masterEnv(), 1);
        $script = $this->fpm->script('index.php', '<?php echo json_encode(["token" => DB_PASSWORD, "now" => time(), '
            . '"flags" => defined("MYSQL_CLIENT_FLAGS") ? MYSQL_CLIENT_FLAGS : null, '
            . '"constants" => ssm_db_config_status()["define_constants_state"]]);');
        $first = json_decode($this->fpm->request($script), true);
        self::assertSame('kept', $first['constants'] ?? $first);
        self::assertSame(2048, $first['flags']);
        $seen = [$first['token'] => $first];
        $deadline = microtime(true) + 8;
        while (count($seen) < 2 && microtime(true) < $deadline) {
            usleep(300_000);
            $r = json_decode($this->fpm->request($script), true);
            self::assertSame(2048, $r['flags'] ?? null, 'defined in every request');
            self::assertSame('kept', $r['constants']);
            $seen[$r['token']] = $r;
        }
        self::assertCount(2, $seen, 'a new token reached the kept DB_PASSWORD');
        foreach (self::verify(array_values($seen)) as $v) {
            self::assertTrue($v['signature_ok']);
            self::assertTrue($v['unexpired']);
        }
    }

    /**
     * SSM failing: the value is served stale, and a failed refresh still
     * makes a new token for it, which verifies.
     */
    public function test_failed_refresh_still_makes_a_new_token_for_the_stale_value(): void
    {
        $name = $this->parameterName('iam-stale');
        self::$moto->putParameter($name, 'mysql://wp_iam@' . self::RDS_HOST . '/shop?auth=iam');
        $r = PhpProcess::json(
            '$token = fn () => ssm_db_config()["DB_PASSWORD"]; $first = $token(); $deadline = microtime(true) + 10; '
            // Wait for the first failed refresh (the fault is set 600 ms in), then for a token made after it.
            . 'do { usleep(100_000); $atFailure = $token(); } while (ssm_db_config_status()["errors"] < 1 && microtime(true) < $deadline); '
            . 'do { usleep(100_000); $later = $token(); $s = ssm_db_config_status(); } while ($later === $atFailure && microtime(true) < $deadline); '
            . '$result = ["first" => $first, "token" => $later, "changed" => $later !== $atFailure, "now" => time(), '
            . '"stale" => $s["stale"], "errors" => $s["errors"], "fetched_again" => $s["version"]];',
            ['ssm_db_config.parameter' => $name, 'ssm_db_config.ttl' => '1', 'ssm_db_config.timeout_ms' => '500'],
            [],
            fn () => Proxy::fault('500')
        );
        self::assertTrue($r['changed'] ?? $r, 'a new token while SSM fails');
        self::assertTrue($r['stale'], 'the value is served stale');
        self::assertGreaterThanOrEqual(1, $r['errors']);
        $v = self::verify([['token' => $r['token'], 'now' => $r['now']]])[0];
        self::assertTrue($v['signature_ok']);
        self::assertTrue($v['unexpired']);
    }

    /**
     * End to end: a local PostgreSQL over TLS that checks the token as RDS
     * does (tests/support/iam_db.py: PAM hands the password to a verifier
     * that recomputes the SigV4 signature with the test's keys and checks
     * the expiry). The extension's DB_PASSWORD logs in; a token with a
     * changed signature, an expired one, and a connection without TLS do not.
     */
    public function test_postgresql_that_verifies_tokens_like_rds_accepts_the_extension_token(): void
    {
        $this->withIamDatabase(false, function (int $port, string $signHost): void {
            $name = $this->parameterName('iam-e2e');
            self::$moto->putParameter($name, "postgresql://wp_iam@127.0.0.1:$port/postgres?auth=iam&sslmode=require&iam_host=$signHost");
            $child = <<<'PHP'
            ssm_db_config_define(__PARAMETER__);
            $login = function (string $password, string $sslmode): ?string {
                $c = @pg_connect(sprintf("host=127.0.0.1 port=%d dbname=postgres user=wp_iam password='%s' sslmode=%s", __PORT__, addcslashes($password, "'\\"), $sslmode), PGSQL_CONNECT_FORCE_NEW);
                if ($c === false) {
                    return null;
                }
                return implode('/', pg_fetch_row(pg_query($c, 'SELECT current_user, ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()')));
            };
            $result = [
                'host' => DB_HOST,
                'ok' => $login(DB_PASSWORD, 'require'),
                'tampered' => $login(preg_replace('/X-Amz-Signature=[0-9a-f]{4}/', 'X-Amz-Signature=0000', DB_PASSWORD), 'require'),
                'plain' => $login(DB_PASSWORD, 'disable'),
            ];
            PHP;
            $r = PhpProcess::json(strtr($child, ['__PARAMETER__' => var_export($name, true), '__PORT__' => (string) $port]));
            self::assertSame("127.0.0.1:$port", $r['host'] ?? $r);
            self::assertSame('wp_iam/true', $r['ok'], 'the extension token logs in, over TLS');
            self::assertNull($r['tampered'], 'a token with a changed signature is refused');
            self::assertNull($r['plain'], 'no login without TLS');

            // An expired token, made by boto3 with the same keys 16 minutes ago, is refused too.
            $proc = proc_open(
                [(string) getenv('SSM_TEST_PYTHON'), dirname(__DIR__) . '/tests/support/rds_token.py'],
                [0 => ['pipe', 'r'], 1 => ['pipe', 'w']],
                $tp
            );
            fwrite($tp[0], json_encode([['access_key' => getenv('AWS_ACCESS_KEY_ID'), 'secret_key' => getenv('AWS_SECRET_ACCESS_KEY'),
                'session_token' => null, 'host' => $signHost, 'port' => $port, 'user' => 'wp_iam', 'region' => 'eu-west-1', 'time' => time() - 960],
                ['access_key' => getenv('AWS_ACCESS_KEY_ID'), 'secret_key' => getenv('AWS_SECRET_ACCESS_KEY'),
                'session_token' => null, 'host' => $signHost, 'port' => $port, 'user' => 'wp_iam', 'region' => 'eu-west-1', 'time' => time()]]));
            fclose($tp[0]);
            [$expired, $fresh] = json_decode((string) stream_get_contents($tp[1]), true);
            proc_close($proc);
            $try = fn (string $token) => @pg_connect(sprintf("host=127.0.0.1 port=%d dbname=postgres user=wp_iam password='%s' sslmode=require", $port, $token), PGSQL_CONNECT_FORCE_NEW);
            self::assertFalse($try($expired), 'an expired token is refused');
            self::assertNotFalse($try($fresh), 'while one made now by boto3 logs in: the refusal is the expiry');
        });
    }

    /**
     * End to end on WordPress's path: MariaDB verifying tokens like RDS
     * (PAM, the user REQUIRE SSL), mysqli_real_connect() with the
     * MYSQL_CLIENT_FLAGS the extension defined, as wpdb calls it.
     */
    public function test_mariadb_that_verifies_tokens_like_rds_accepts_wordpress_connection(): void
    {
        $this->withIamDatabase(true, function (int $port, string $signHost): void {
            $name = $this->parameterName('iam-e2e-mariadb');
            self::$moto->putParameter($name, "mysql://wp_iam@127.0.0.1:$port/mysql?auth=iam&iam_host=$signHost");
            $child = <<<'PHP'
            ssm_db_config_define(__PARAMETER__);
            $login = function (string $password, int $flags): ?string {
                [$host, $port] = explode(':', DB_HOST);
                $m = mysqli_init();
                try {
                    mysqli_real_connect($m, $host, DB_USER, $password, DB_NAME, (int) $port, null, $flags);
                } catch (mysqli_sql_exception $e) {
                    return null;
                }
                $row = $m->query("SELECT CURRENT_USER(), VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'")->fetch_row();
                return $row[0] . '/' . ($row[1] !== '' ? 'tls' : 'plain');
            };
            $result = [
                'flags' => MYSQL_CLIENT_FLAGS,
                'ok' => $login(DB_PASSWORD, MYSQL_CLIENT_FLAGS),
                'tampered' => $login(preg_replace('/X-Amz-Signature=[0-9a-f]{4}/', 'X-Amz-Signature=0000', DB_PASSWORD), MYSQL_CLIENT_FLAGS),
                'plain' => $login(DB_PASSWORD, 0),
            ];
            PHP;
            $r = PhpProcess::json(strtr($child, ['__PARAMETER__' => var_export($name, true)]));
            self::assertSame(2048, $r['flags'] ?? $r);
            self::assertSame('wp_iam@%/tls', $r['ok'], 'the extension token logs in with WordPress\'s flags, over TLS');
            self::assertNull($r['tampered'], 'a token with a changed signature is refused');
            self::assertNull($r['plain'], 'no login without MYSQLI_CLIENT_SSL');
        });
    }

    /**
     * php-fpm with the host's shared cache: one worker fetches and signs,
     * the others take the value and its token from the shared entry, so a
     * host makes one token per refresh and asks SSM once, however many
     * workers serve. The shared file is sealed (no token in it as text) and
     * 0600.
     */
    public function test_fpm_workers_share_one_token_through_the_hosts_entry(): void
    {
        $name = $this->parameterName('iam-shared');
        self::$moto->putParameter($name, 'mysql://wp_iam@' . self::RDS_HOST . '/shop?auth=iam');
        $dir = sys_get_temp_dir() . '/ssm-iam-shared-' . bin2hex(random_bytes(4));
        mkdir($dir, 0700);
        if (posix_geteuid() === 0) {
            chown($dir, 'nobody');
        }
        Proxy::reset();
        $this->fpm = Fpm::start(['ssm_db_config.parameter' => $name, 'ssm_db_config.shared_dir' => $dir], Fpm::masterEnv(), 4);
        $script = $this->fpm->script('index.php', '<?php $c = ssm_db_config(); $s = ssm_db_config_status(); '
            . 'echo json_encode(["token" => $c["DB_PASSWORD"], "pid" => getmypid(), "now" => time(), "shared_hits" => $s["shared_hits"], '
            . '"fetches" => $s["fetches"], "in_status" => str_contains(json_encode($s), substr($c["DB_PASSWORD"], -64))]);');
        $answers = [];
        for ($round = 0; $round < 3; $round++) {
            foreach ($this->fpm->requests($script, 8) as $body) {
                $answers[] = json_decode($body, true) ?? $body;
            }
        }
        $tokens = array_unique(array_column($answers, 'token'));
        $pids = array_unique(array_column($answers, 'pid'));
        self::assertGreaterThan(1, count($pids), 'several workers served: ' . count($pids));
        self::assertCount(1, $tokens, 'one token for every worker of the host');
        self::assertSame(1, Proxy::getParameterCalls(), 'one fetch for the host');
        $fetchesByPid = [];
        foreach ($answers as $a) {
            $fetchesByPid[$a['pid']] = max($fetchesByPid[$a['pid']] ?? 0, $a['fetches']);
            self::assertFalse($a['in_status'], 'no token in the status array');
        }
        self::assertSame(1, array_sum($fetchesByPid), 'one worker fetched and signed');
        self::assertGreaterThan(0, max(array_column($answers, 'shared_hits')), 'the others took it from the host\'s entry');
        $v = self::verify([['token' => $tokens[0], 'now' => $answers[0]['now']]])[0];
        self::assertTrue($v['signature_ok']);
        self::assertTrue($v['unexpired']);
        $files = glob("$dir/*.entry") ?: [];
        self::assertNotEmpty($files);
        foreach ($files as $file) {
            self::assertSame(0600, fileperms($file) & 0777);
            $bytes = (string) file_get_contents($file);
            self::assertStringNotContainsString('X-Amz-Signature', $bytes, 'the token is sealed in the entry');
            self::assertStringNotContainsString(substr($tokens[0], -64), $bytes);
        }
        $this->fpm->stop();
        array_map('unlink', glob("$dir/*") ?: []);
        rmdir($dir);
    }

    /**
     * ssm_db_config_refresh() after a refused login: while SSM fails and the
     * host backs off (so the value is not fetched again), it still makes a
     * new token, locally, without a request to SSM.
     */
    public function test_forced_refresh_makes_a_new_token_while_ssm_backs_off(): void
    {
        $name = $this->parameterName('iam-forced');
        self::$moto->putParameter($name, 'mysql://wp_iam@' . self::RDS_HOST . '/shop?auth=iam');
        $r = PhpProcess::json(
            '$held = ssm_db_config()["DB_PASSWORD"]; $deadline = microtime(true) + 10; $failed = 0; $new = null; '
            // Refresh until SSM fails (the fault comes 600 ms in), then until a refresh, served
            // while the host backs off, hands a token other than the one held.
            . 'while ($new === null && microtime(true) < $deadline) { usleep(100_000); '
            . '  $before = ssm_db_config_status()["ssm_requests"]; '
            . '  try { $c = ssm_db_config_refresh()["DB_PASSWORD"]; if ($failed > 0 && $c !== $held) { $new = $c; } else { $held = $c; } } '
            . '  catch (SsmDbConfigException $e) { $failed++; } } '
            . '$s = ssm_db_config_status(); '
            . '$result = ["first" => $held, "token" => $new, "failed" => $failed, "requests_for_it" => $s["ssm_requests"] - $before, '
            . '"now" => time(), "age" => $s["iam_token_age_seconds"], "state" => $s["state"]];',
            ['ssm_db_config.parameter' => $name, 'ssm_db_config.timeout_ms' => '500'],
            [],
            fn () => Proxy::fault('500')
        );
        self::assertGreaterThanOrEqual(1, $r['failed'] ?? $r, 'SSM failed first');
        self::assertIsString($r['token'], 'a forced refresh was served while the host backs off');
        self::assertSame(0, $r['requests_for_it'], 'the new token asked SSM nothing');
        self::assertNotSame($r['first'], $r['token'], 'a token signed later');
        self::assertLessThan(1.0, $r['age']);
        [$first, $new] = self::verify([['token' => $r['first'], 'now' => $r['now']], ['token' => $r['token'], 'now' => $r['now']]]);
        self::assertTrue($new['signature_ok']);
        self::assertTrue($new['unexpired']);
        self::assertGreaterThan($first['time'], $new['time'], 'signed after the first');
    }

    /**
     * The same in php-fpm with the host's shared cache (the forced refresh
     * goes through the slot's lock): while SSM fails and the host backs off,
     * a forced refresh signs a new token. A failed fetch makes one too (for
     * the value served stale), so the token that counts is one that differs
     * from the first served after the last failure, with no failure between.
     */
    public function test_fpm_forced_refresh_makes_a_new_token_while_the_host_backs_off(): void
    {
        $name = $this->parameterName('iam-fpm-forced');
        self::$moto->putParameter($name, 'mysql://wp_iam@' . self::RDS_HOST . '/shop?auth=iam');
        $dir = sys_get_temp_dir() . '/ssm-iam-forced-' . bin2hex(random_bytes(4));
        mkdir($dir, 0700);
        if (posix_geteuid() === 0) {
            chown($dir, 'nobody');
        }
        $this->fpm = Fpm::start(['ssm_db_config.parameter' => $name, 'ssm_db_config.shared_dir' => $dir,
            'ssm_db_config.timeout_ms' => '500'], Fpm::masterEnv(), 1);
        $refresh = $this->fpm->script('refresh.php', '<?php try { echo ssm_db_config_refresh()["DB_PASSWORD"]; } '
            . 'catch (SsmDbConfigException $e) { echo "code ", $e->getCode(); }');
        self::assertStringStartsWith(self::RDS_HOST, $this->fpm->request($refresh));
        Proxy::fault('500');
        $failures = 0;
        $baseline = null;
        $new = null;
        $deadline = microtime(true) + 15;
        while ($new === null && microtime(true) < $deadline) {
            usleep(100_000);
            $body = $this->fpm->request($refresh);
            if (str_starts_with($body, 'code ')) {
                $failures++;
                $baseline = null;
            } elseif ($failures > 0 && $baseline === null) {
                $baseline = $body;
            } elseif ($baseline !== null && $body !== $baseline) {
                $new = $body;
            }
        }
        self::assertGreaterThanOrEqual(1, $failures, 'SSM failed');
        self::assertIsString($new, 'a forced refresh signed a new token while the host backed off');
        [$old, $fresh] = self::verify([['token' => $baseline, 'now' => time()], ['token' => $new, 'now' => time()]]);
        self::assertTrue($fresh['signature_ok']);
        self::assertTrue($fresh['unexpired']);
        self::assertGreaterThan($old['time'], $fresh['time']);
        $this->fpm->stop();
        array_map('unlink', glob("$dir/*") ?: []);
        rmdir($dir);
    }

    /**
     * The health probe (wp-plugin/health/db.php's SSM_DB_Config_Db_Probe::check_configured)
     * against MariaDB verifying tokens like RDS: a token the database refuses (signed with a
     * key that is not the role's: the host's credentials changed) makes it ask the extension
     * once for a new token and log in with it; TLS comes from auth=iam without
     * MYSQL_CLIENT_FLAGS (the standalone endpoint does not load wp-config.php).
     */
    public function test_health_probe_asks_for_a_new_token_once_after_mariadb_refuses_one(): void
    {
        $this->withIamDatabase(true, function (int $port, string $signHost): void {
            $name = $this->parameterName('iam-probe-mariadb');
            self::$moto->putParameter($name, "mysql://wp_iam@127.0.0.1:$port/mysql?auth=iam&iam_host=$signHost&ssl-mode=REQUIRED");
            $this->assertProbeRetries($name);
        });
    }

    /** The same with PostgreSQL (PAM authentication failed: SQLSTATE 28P01). */
    public function test_health_probe_asks_for_a_new_token_once_after_postgresql_refuses_one(): void
    {
        $this->withIamDatabase(false, function (int $port, string $signHost): void {
            $name = $this->parameterName('iam-probe-pg');
            self::$moto->putParameter($name, "postgresql://wp_iam@127.0.0.1:$port/postgres?auth=iam&sslmode=require&iam_host=$signHost");
            $this->assertProbeRetries($name);
        });
    }

    private function assertProbeRetries(string $name): void
    {
        $child = <<<'PHP'
        define('SSM_DB_CONFIG_STANDALONE', true);
        require __PROBE__;
        $probe = new SSM_DB_Config_Db_Probe();
        $deadline = fn () => microtime(true) + 3;
        $show = fn ($r) => ['reason' => $r->reason, 'writer' => $r->writer, 'auth_failed' => $r->auth_failed, 'retried' => $r->retried,
            'detail_has_token' => str_contains((string) $r->detail, 'X-Amz')];
        $refreshes = 0;
        // The host's credentials still wrong at the retry: one retry, then the failure.
        $still = $probe->check_configured($deadline(), function () use (&$refreshes) { $refreshes++; return ssm_db_config_refresh(); });
        $stillRefreshes = $refreshes;
        // The role's key by the retry (instance credentials renewed): the new token logs in.
        $fixed = $probe->check_configured($deadline(), function () use (&$refreshes) {
            $refreshes++;
            putenv('AWS_SECRET_ACCESS_KEY=' . getenv('IAM_TEST_RIGHT_SECRET'));
            return ssm_db_config_refresh();
        });
        $result = ['still' => $show($still), 'still_refreshes' => $stillRefreshes, 'fixed' => $show($fixed), 'refreshes' => $refreshes,
            'after' => $show($probe->check_configured($deadline(), function () use (&$refreshes) { $refreshes++; return ssm_db_config_refresh(); })),
            'refreshes_after' => $refreshes];
        PHP;
        $r = PhpProcess::json(
            strtr($child, ['__PROBE__' => var_export(dirname(__DIR__) . '/wp-plugin/includes/class-db-probe.php', true)]),
            ['ssm_db_config.parameter' => $name],
            ['AWS_SECRET_ACCESS_KEY' => 'not-the-roles-secret-key', 'IAM_TEST_RIGHT_SECRET' => (string) getenv('AWS_SECRET_ACCESS_KEY')]
        );
        self::assertSame(['reason' => 'connect_failed', 'writer' => false, 'auth_failed' => true, 'retried' => true, 'detail_has_token' => false], $r['still'] ?? $r);
        self::assertSame(1, $r['still_refreshes'], 'one new token per check, not more');
        self::assertSame(['reason' => 'writer', 'writer' => true, 'auth_failed' => false, 'retried' => true, 'detail_has_token' => false], $r['fixed']);
        self::assertSame(2, $r['refreshes']);
        self::assertSame(['reason' => 'writer', 'writer' => true, 'auth_failed' => false, 'retried' => false, 'detail_has_token' => false], $r['after']);
        self::assertSame(2, $r['refreshes_after'], 'a login that works asks for nothing');
    }

    /**
     * WordPress itself on IAM tokens: Debian's WordPress with `ssm_db_config_define();` in
     * wp-config.php and the plugin's db.php drop-in in wp-content, against MariaDB verifying
     * tokens like RDS. It installs and runs over TLS on the extension's token. A process whose
     * first token is refused (signed with a key that is not the role's; the host's credentials
     * were renewed since) gets one new token from the drop-in's refresh and connects; with
     * credentials that stay wrong WordPress shows its database error after exactly one retry.
     * No token reaches the output.
     */
    public function test_wordpress_runs_on_iam_tokens_and_its_drop_in_asks_for_one_new_token_after_a_refused_one(): void
    {
        $this->withIamDatabase(true, function (int $port, string $signHost, string $server): void {
            $root = function (string $sql) use ($server): string {
                exec('mariadb --socket=' . escapeshellarg("$server/mysqld.sock") . ' -uroot -N -e ' . escapeshellarg($sql) . ' 2>&1', $out, $status);
                self::assertSame(0, $status, implode("\n", $out));
                return trim(implode("\n", $out));
            };
            // Logins the server refused (PAM said no), each a token tried.
            $refused = fn (): int => (int) preg_replace('/\D/', '', $root("SHOW GLOBAL STATUS LIKE 'Access_denied_errors'"));
            $root('CREATE DATABASE wp');
            $name = $this->parameterName('iam-wordpress');
            self::$moto->putParameter($name, "mysql://wp_iam@127.0.0.1:$port/wp?auth=iam&iam_host=$signHost");

            $wp = dirname($server) . '/wordpress';
            $this->copyWordPress($wp);
            $right = (string) getenv('AWS_SECRET_ACCESS_KEY');
            // One PHP process running $code with the secret key given; with $renewed, its first
            // token is made before the key is renewed to that one. Each process has a limiter
            // state folder of its own, as the first of its host to fail: within a second of
            // another's refresh the plugin's limit keeps the token a process has (docs/iam-auth.md).
            $run = function (string $code, string $secret, ?string $renewed = null, bool $debug = false) use ($wp, $name): array {
                static $n = 0;
                $n++;
                $main = '$_SERVER["HTTP_HOST"] = "127.0.0.1:8080"; '
                    . 'register_shutdown_function(function () { $s = ssm_db_config_status(); '
                    . 'echo "\nSTATUS ", json_encode(["fetches" => $s["fetches"], "auth" => $s["auth"]]), "\n"; }); '
                    . 'if (($renewed = getenv("IAM_TEST_RENEWED_SECRET")) !== false) { ssm_db_config(); putenv("AWS_SECRET_ACCESS_KEY=$renewed"); } '
                    . $code;
                $out = PhpProcess::run($main, ['ssm_db_config.parameter' => $name], [
                    'AWS_SECRET_ACCESS_KEY' => $secret, 'IAM_TEST_RENEWED_SECRET' => $renewed ?? false,
                    'IAM_TEST_WP' => $wp, 'IAM_TEST_WP_DEBUG' => $debug ? '1' : '0', 'SSM_DB_CONFIG_STATE_DIR' => dirname($wp) . "/state-$n",
                    'WP_URL' => 'http://127.0.0.1:8080', 'ADMIN_PASS' => bin2hex(random_bytes(12)), 'SUBSCRIBER_PASS' => bin2hex(random_bytes(12)),
                ]);
                $text = $out['stdout'] . $out['stderr'];
                foreach (['X-Amz-', 'Action=connect', 'DBUser='] as $part) {
                    self::assertStringNotContainsString($part, $text, 'no token in WordPress\'s output');
                }
                preg_match('/^STATUS (.*)$/m', $out['stdout'], $status);
                preg_match('/^RESULT (.*)$/m', $out['stdout'], $result);
                // What a person reads of it (wp_die()'s page without its style sheet), for messages.
                $shown = trim((string) preg_replace('/\s+/', ' ', strip_tags((string) preg_replace('#<style.*?</style>#s', '', $text))));
                return ['status' => json_decode($status[1] ?? 'null', true), 'result' => json_decode($result[1] ?? 'null', true),
                    'text' => $shown];
            };

            $install = $run('$argv = [null, getenv("IAM_TEST_WP")]; require ' . var_export(dirname(__DIR__) . '/tests/wordpress/install-wordpress.php', true) . ';', $right);
            self::assertStringContainsString('installed', $install['text'], 'WordPress installed over the token: ' . substr($install['text'], 0, 800));

            $use = <<<'PHP'
            require getenv('IAM_TEST_WP') . '/wp-load.php';
            global $wpdb;
            $id = wp_insert_post(['post_title' => 'IAM post', 'post_content' => 'written-with-a-token', 'post_status' => 'publish']);
            clean_post_cache($id);
            echo "RESULT ", json_encode(['db' => get_class($wpdb), 'siteurl' => get_option('siteurl'), 'post' => get_post($id)->post_content,
                'user' => $wpdb->get_var('SELECT CURRENT_USER()'),
                'cipher' => $wpdb->get_var("SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'"),
                'token_replaced' => DB_PASSWORD !== ssm_db_config()['DB_PASSWORD'],
                'admin_probe' => (new SSM_DB_Config_Collector(new SSM_DB_Config_Dropins(WP_CONTENT_DIR)))->probe()->reason]), "\n";
            PHP;

            $before = $refused();
            $ok = $run($use, $right);
            self::assertIsArray($ok['result'], 'WordPress ran: ' . substr($ok['text'], 0, 800));
            self::assertSame('SSM_DB_Config_WPDB', $ok['result']['db'], 'the drop-in is wpdb');
            $seen = [$ok['result']['siteurl'], $ok['result']['post'], $ok['result']['user'], $ok['result']['token_replaced']];
            self::assertSame(['http://127.0.0.1:8080', 'written-with-a-token', 'wp_iam@%', false], $seen);
            self::assertNotEmpty($ok['result']['cipher'], 'the session is TLS');
            self::assertSame('writer', $ok['result']['admin_probe'], 'the admin page and Site Health probe log in with the token, over TLS');
            self::assertSame(['fetches' => 1, 'auth' => 'iam'], ['fetches' => $ok['status']['fetches'], 'auth' => $ok['status']['auth']]);
            self::assertSame(0, $refused() - $before, 'the first token logged in');

            $before = $refused();
            $calls = Proxy::callsFor($name);
            $renewed = $run($use, 'not-the-roles-secret-key', $right);
            self::assertIsArray($renewed['result'], 'WordPress connected with the new token: ' . substr($renewed['text'], 0, 800));
            $seen = [$renewed['result']['post'], $renewed['result']['user'], $renewed['result']['token_replaced']];
            self::assertSame(['written-with-a-token', 'wp_iam@%', true], $seen, 'written and read as wp_iam with a token other than DB_PASSWORD');
            self::assertNotEmpty($renewed['result']['cipher']);
            self::assertSame(1, $refused() - $before, 'the first token was refused, the new one was not');
            self::assertSame(2, $renewed['status']['fetches'], 'one forced refresh after the warm-up');
            self::assertSame(2, Proxy::callsFor($name) - $calls);

            $before = $refused();
            $calls = Proxy::callsFor($name);
            $wrong = $run($use, 'not-the-roles-secret-key', null, true);
            self::assertNull($wrong['result'], 'WordPress did not run: ' . substr($wrong['text'], 0, 800));
            self::assertStringContainsString('Error establishing a database connection', $wrong['text']);
            self::assertSame(2, $refused() - $before, 'the first login and exactly one retry');
            self::assertSame(2, $wrong['status']['fetches'], 'one new token for the retry');
            self::assertSame(2, Proxy::callsFor($name) - $calls);
        });
    }

    /**
     * A WordPress site in $wp: Debian's code (wp-admin, wp-includes and the themes linked, the
     * top-level files copied: wp-load.php finds wp-config.php next to itself), the plugin in
     * wp-content/plugins and its db.php drop-in in wp-content, and a wp-config.php whose
     * database lines are `ssm_db_config_define();`.
     */
    private function copyWordPress(string $wp): void
    {
        $source = '/usr/share/wordpress';
        mkdir("$wp/wp-content/plugins", 0755, true);
        foreach (glob("$source/*.php") ?: [] as $file) {
            if (basename($file) !== 'wp-config.php') {
                copy($file, "$wp/" . basename($file));
            }
        }
        symlink("$source/wp-admin", "$wp/wp-admin");
        symlink("$source/wp-includes", "$wp/wp-includes");
        symlink("$source/wp-content/themes", "$wp/wp-content/themes");
        exec('cp -r ' . escapeshellarg(dirname(__DIR__) . '/wp-plugin') . ' ' . escapeshellarg("$wp/wp-content/plugins/ssm-db-config"), $out, $status);
        self::assertSame(0, $status);
        copy(dirname(__DIR__) . '/wp-plugin/dropins/db.php', "$wp/wp-content/db.php");
        file_put_contents("$wp/wp-config.php", <<<'PHP'
        <?php
        ssm_db_config_define();
        define( 'DB_CHARSET', 'utf8mb4' );
        define( 'DB_COLLATE', '' );
        define( 'WP_HOME', 'http://127.0.0.1:8080' );
        define( 'WP_SITEURL', 'http://127.0.0.1:8080' );
        define( 'WP_HTTP_BLOCK_EXTERNAL', true );
        define( 'AUTOMATIC_UPDATER_DISABLED', true );
        define( 'DISABLE_WP_CRON', true );
        define( 'WP_DEBUG', getenv( 'IAM_TEST_WP_DEBUG' ) === '1' );
        $table_prefix = 'wp_';
        if ( ! defined( 'ABSPATH' ) ) {
        	define( 'ABSPATH', __DIR__ . '/' );
        }
        require_once ABSPATH . 'wp-settings.php';
        PHP);
    }

    /**
     * Whether iam_db.py can bind its PAM service over /etc/pam.d in a private
     * mount namespace: as root, and where the root is a mount point (inside
     * the Debian 13 chroot it is not, so these run on the host system only).
     */
    private static function privateMountNamespace(): bool
    {
        static $available = null;
        if ($available === null) {
            $available = false;
            if (posix_geteuid() === 0) {
                exec('unshare -m --propagation private true 2>/dev/null', $unused, $status);
                $available = $status === 0;
            }
        }
        return $available;
    }

    /** Runs $test(port, sign host, server folder) against tests/support/iam_db.py's MariaDB ($mariadb) or PostgreSQL. */
    private function withIamDatabase(bool $mariadb, callable $test): void
    {
        $server = $mariadb ? '/usr/sbin/mariadbd' : '/usr/lib/postgresql/15/bin/postgres';
        if (!self::privateMountNamespace() || !is_executable($server)) {
            self::markTestSkipped("needs root (a private mount namespace for PAM) and $server");
        }
        $signHost = 'shop.cluster-abc.eu-west-1.rds.amazonaws.com';
        $dir = sys_get_temp_dir() . '/iam-db-' . bin2hex(random_bytes(4));
        mkdir($dir, 0755);
        $db = proc_open(
            [(string) getenv('SSM_TEST_PYTHON'), dirname(__DIR__) . '/tests/support/iam_db.py', ...($mariadb ? ['--mariadb'] : []), "$dir/db", $signHost,
                (string) getenv('AWS_ACCESS_KEY_ID'), (string) getenv('AWS_SECRET_ACCESS_KEY')],
            [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['file', "$dir/stderr", 'w']],
            $pipes
        );
        try {
            $started = json_decode((string) fgets($pipes[1]), true);
            self::assertIsArray($started, 'iam_db.py started: ' . @file_get_contents("$dir/stderr"));
            $test((int) $started['port'], $signHost, "$dir/db");
        } finally {
            fclose($pipes[0]);
            fclose($pipes[1]);
            proc_close($db);
            exec('rm -rf ' . escapeshellarg($dir));
        }
    }

    public function test_password_values_define_no_mysql_client_flags(): void
    {
        $r = $this->define('mysql://wp:pw@' . self::RDS_HOST . '/shop');
        self::assertArrayHasKey('flags', $r, json_encode(array_diff_key($r, ['token' => 1])));
        self::assertNull($r['flags']);
        self::assertSame('password', $r['auth']);
        self::assertNull($r['token_age']);
    }
}
