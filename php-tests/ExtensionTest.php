<?php

declare(strict_types=1);

namespace SsmDbConfig\Tests;

/**
 * ssm_db_config() against moto, in this process (the cache, refresh, status)
 * and in child processes where a case needs other php.ini settings.
 */
final class ExtensionTest extends TestCase
{
    private static function assertPassword(string $expected, array $config): void
    {
        // Never assertSame on the password: a failure message would print it.
        self::assertTrue(hash_equals($expected, $config['DB_PASSWORD']), 'DB_PASSWORD is the stored password');
    }

    public function test_url_value_gives_every_key_with_wordpress_host_form(): void
    {
        $name = $this->parameterName('url');
        $password = self::$canary . '@:/?#% \'"ä';
        self::$moto->putParameter($name, 'postgresql://wp%40shop:' . rawurlencode($password) . '@db.example.internal:6432/shop?sslmode=require');
        $config = ssm_db_config($name);
        self::assertSame(['DB_HOST', 'DB_PORT', 'DB_USER', 'DB_PASSWORD', 'DB_NAME', 'DB_ENGINE'], array_keys($config));
        self::assertSame('db.example.internal:6432', $config['DB_HOST']);
        self::assertSame(6432, $config['DB_PORT']);
        self::assertSame('wp@shop', $config['DB_USER']);
        self::assertPassword($password, $config);
        self::assertSame('shop', $config['DB_NAME']);
        self::assertSame('postgresql', $config['DB_ENGINE']);
    }

    public function test_plain_string_mysql_url_with_ipv6_host_and_default_port(): void
    {
        $name = $this->parameterName('mysql');
        self::$moto->putParameter($name, 'mysql://wp:pw@[2001:db8::1]/wordpress', 'String');
        $config = ssm_db_config($name);
        self::assertSame('[2001:db8::1]:3306', $config['DB_HOST']);
        self::assertSame(3306, $config['DB_PORT']);
        self::assertSame('mysql', $config['DB_ENGINE']);
    }

    /**
     * Values operators store that read two ways are refused, naming the field
     * and how to write it; the socket forms WordPress knows are read on purpose.
     */
    public function test_values_are_read_as_meant_or_refused(): void
    {
        $cases = [
            // value => DB_HOST, DB_NAME, [option => value] — or the words of the refusal
            '{"engine":"mysql","host":"blog-db.c9.eu-central-1.rds.amazonaws.com:3306","port":3306,"username":"wp","password":"pw","dbname":"blog"}' => '"host"',
            'mysql://wp:pw@localhost:/run/mysqld/mysqld.sock/wordpress' => 'port',
            'mysql://wp:pw@db.internal:3306/wordpress/' => 'database name',
            'mysql://wp:p@ss@db.internal/wordpress' => '%40',
            'postgresql://wp:pw@db.internal:5432/shop?application_name=wp@web-1&sslmode=require'
                => ['db.internal:5432', 'shop'],
            'mysql://wp:pw@localhost/wordpress?socket=/run/mysqld/mysqld.sock' => ['localhost:/run/mysqld/mysqld.sock', 'wordpress'],
            'mysql://wp:pw@%2Frun%2Fmysqld%2Fmysqld.sock/wordpress' => ['localhost:/run/mysqld/mysqld.sock', 'wordpress'],
            "\u{FEFF}mysql://wp:pw@db.internal/wordpress\r\n" => ['db.internal:3306', 'wordpress'],
        ];
        foreach ($cases as $value => $expected) {
            $name = $this->parameterName('grammar');
            self::$moto->putParameter($name, $value);
            if (is_array($expected)) {
                $config = ssm_db_config($name);
                self::assertSame($expected, [$config['DB_HOST'], $config['DB_NAME']], $value);
                continue;
            }
            try {
                ssm_db_config($name);
                self::fail("refused: $value");
            } catch (\SsmDbConfigException $e) {
                self::assertSame(\SsmDbConfigException::INVALID_VALUE, $e->getCode(), $value);
                self::assertStringContainsString($expected, $e->getMessage(), $value);
                self::assertStringNotContainsString('pw', str_replace($name, '', $e->getMessage()), 'the value is not quoted');
            }
        }
        $status = ssm_db_config_status();
        self::assertArrayHasKey('socket', $status);
    }

    public function test_json_value_in_rds_secret_shape(): void
    {
        $name = $this->parameterName('json');
        self::$moto->putParameter($name, json_encode([
            'engine' => 'mariadb', 'host' => 'maria.internal', 'port' => '3307',
            'username' => 'wp', 'password' => self::$canary, 'dbname' => 'wp',
        ]));
        $config = ssm_db_config($name);
        self::assertSame('maria.internal:3307', $config['DB_HOST']);
        self::assertSame(3307, $config['DB_PORT']);
        self::assertSame('mysql', $config['DB_ENGINE']);
        self::assertPassword(self::$canary, $config);
    }

    public function test_secrets_manager_reference_is_read_through_ssm(): void
    {
        $secret = 'ssm-db-config-test-' . bin2hex(random_bytes(4));
        self::$moto->createSecret($secret, json_encode([
            'engine' => 'postgres', 'host' => 'pg.internal', 'port' => 5432,
            'username' => 'store', 'password' => self::$canary, 'dbname' => 'store',
        ]));
        $config = ssm_db_config('/aws/reference/secretsmanager/' . $secret);
        self::assertSame('pg.internal:5432', $config['DB_HOST']);
        self::assertSame('store', $config['DB_USER']);
        self::assertPassword(self::$canary, $config);
    }

    public function test_version_and_label_selectors_pick_older_values(): void
    {
        $name = $this->parameterName('versions');
        self::$moto->putParameter($name, 'postgresql://u:p@old-host/d');
        $v2 = self::$moto->putParameter($name, 'postgresql://u:p@new-host/d');
        self::assertSame(2, $v2);
        self::$moto->labelParameter($name, 1, 'previous');
        self::assertSame('new-host:5432', ssm_db_config($name)['DB_HOST']);
        self::assertSame('old-host:5432', ssm_db_config("$name:1")['DB_HOST']);
        self::assertSame('old-host:5432', ssm_db_config("$name:previous")['DB_HOST']);
        self::assertSame('new-host:5432', ssm_db_config("$name:2")['DB_HOST']);
    }

    public function test_second_call_is_served_from_cache_without_a_request(): void
    {
        $name = $this->parameterName('cache');
        self::$moto->putParameter($name, 'postgresql://u:p@h/d');
        $before = ssm_db_config_status();
        ssm_db_config($name);
        self::assertSame(1, Proxy::getParameterCalls());
        for ($i = 0; $i < 100; $i++) {
            ssm_db_config($name);
        }
        self::assertSame(1, Proxy::getParameterCalls(), 'no request after the first');
        $after = ssm_db_config_status();
        self::assertSame($before['hits'] + 100, $after['hits']);
        self::assertSame($before['misses'] + 1, $after['misses']);
        self::assertSame($before['fetches'] + 1, $after['fetches']);
    }

    public function test_returned_array_is_a_copy_on_write_value(): void
    {
        $name = $this->parameterName('cow');
        self::$moto->putParameter($name, 'postgresql://u:p@h/d');
        $a = ssm_db_config($name);
        $a['DB_HOST'] = 'changed';
        $a['EXTRA'] = true;
        unset($a['DB_USER']);
        $b = ssm_db_config($name);
        self::assertSame('h:5432', $b['DB_HOST']);
        self::assertCount(6, $b);
        foreach ($b as $key => &$value) {
            $value = "x$key";
        }
        unset($value);
        self::assertSame('h:5432', ssm_db_config($name)['DB_HOST']);
    }

    public function test_refresh_fetches_now_and_replaces_the_cached_value(): void
    {
        $name = $this->parameterName('refresh');
        self::$moto->putParameter($name, 'postgresql://u:p@primary/d');
        self::assertSame('primary:5432', ssm_db_config($name)['DB_HOST']);
        self::$moto->putParameter($name, 'postgresql://u:p@standby/d');
        self::assertSame('primary:5432', ssm_db_config($name)['DB_HOST'], 'cached until TTL');
        $held = ssm_db_config($name);
        $refreshed = ssm_db_config_refresh($name);
        self::assertSame('standby:5432', $refreshed['DB_HOST']);
        self::assertSame('standby:5432', ssm_db_config($name)['DB_HOST']);
        self::assertSame('primary:5432', $held['DB_HOST'], 'an array a script holds stays intact');
        self::assertSame(2, Proxy::getParameterCalls());
    }

    public function test_after_ttl_the_old_value_is_served_while_refreshing_in_the_background(): void
    {
        $name = $this->parameterName('ttl');
        self::$moto->putParameter($name, 'postgresql://u:p@before/d');
        // While the child sleeps past the TTL the value changes and SSM turns
        // slow (800 ms an answer): a call that waited for SSM would take that long.
        $r = PhpProcess::json(
            '$a = ssm_db_config(); $b = ssm_db_config();'
            . ' usleep(1_300_000);'
            . ' $t = hrtime(true); $c = ssm_db_config(); $ms = (hrtime(true) - $t) / 1e6; $during = ssm_db_config_status();'
            . ' $until = hrtime(true) + 5e9; do { usleep(20_000); $d = ssm_db_config(); } while ($d["DB_HOST"] !== "after:5432" && hrtime(true) < $until);'
            . ' $after = ssm_db_config_status();'
            . ' $result = ["stale_host" => $c["DB_HOST"], "stale_ms" => $ms, "during" => $during["state"], "new_host" => $d["DB_HOST"], "after" => $after];',
            ['ssm_db_config.parameter' => $name, 'ssm_db_config.ttl' => '1'],
            [],
            function () use ($name) {
                self::$moto->putParameter($name, 'postgresql://u:p@after/d');
                Proxy::fault('slow', 800);
            }
        );
        self::assertSame('before:5432', $r['stale_host'], 'past the TTL the last value is served at once');
        self::assertLessThan(400.0, $r['stale_ms'], 'without waiting for SSM (800 ms an answer)');
        self::assertSame('stale', $r['during']);
        self::assertSame('after:5432', $r['new_host'], 'the background refresh landed');
        self::assertSame('fresh', $r['after']['state']);
        self::assertSame(2, $r['after']['fetches']);
        self::assertSame(1, $r['after']['misses'], 'only the first call waited');
        self::assertSame(2, $r['after']['ssm_requests'], 'one request for the first fetch, one for the refresh');
        self::assertSame(2, Proxy::getParameterCalls());
    }

    public function test_fetch_thread_waits_for_the_next_refresh_only_with_a_short_ttl(): void
    {
        $name = $this->parameterName('linger');
        self::$moto->putParameter($name, 'postgresql://u:p@h/d');
        $code = '$threads = function () { $n = 0; foreach (glob("/proc/self/task/*/comm") as $f) { $n += trim(file_get_contents($f)) === "ssm_db_config"; } return $n; };'
            // Until the thread has ended, or 0.6 s (three times its idle exit) have shown it stays.
            . ' ssm_db_config(); $during = $threads(); $until = hrtime(true) + 600e6;'
            . ' do { usleep(20_000); $after = $threads(); } while ($after > 0 && hrtime(true) < $until);'
            . ' $result = ["during" => $during, "after" => $after];';
        $short = PhpProcess::json($code, ['ssm_db_config.parameter' => $name, 'ssm_db_config.ttl' => '5']);
        $long = PhpProcess::json($code, ['ssm_db_config.parameter' => $name, 'ssm_db_config.ttl' => '300']);
        // The two counts without PhpProcess's _stderr and _seconds; a failed
        // script (no counts) is compared whole, so that its exception shows.
        $threads = fn (array $r) => isset($r['during']) ? ['during' => $r['during'], 'after' => $r['after']] : $r;
        self::assertSame(['during' => 1, 'after' => 1], $threads($short), 'TTL 5 s: the thread and its client wait for the next refresh');
        self::assertSame(['during' => 1, 'after' => 0], $threads($long), 'TTL 300 s: the thread ends 0.2 s after the fetch');
    }

    public function test_define_sets_the_six_constants_from_one_call(): void
    {
        $name = $this->parameterName('define');
        self::$moto->putParameter($name, 'mysql://wp:' . rawurlencode(self::$canary) . '@db.internal:3307/shop');
        $n = var_export($name, true);
        $r = PhpProcess::json('$returned = ssm_db_config_define(' . $n . '); $array = ssm_db_config(' . $n . '); '
            . '$result = ["returned" => $returned, "same_as_array" => array_map("constant", array_keys($array)) === array_values($array), '
            . '"DB_HOST" => DB_HOST, "DB_PORT" => DB_PORT, "DB_USER" => DB_USER, "DB_PASSWORD" => DB_PASSWORD, '
            . '"DB_NAME" => DB_NAME, "DB_ENGINE" => DB_ENGINE, "fetches" => ssm_db_config_status()["fetches"]];');
        self::assertNull($r['returned']);
        self::assertTrue($r['same_as_array'], 'each constant is the array entry of its name');
        self::assertSame('db.internal:3307', $r['DB_HOST']);
        self::assertSame(3307, $r['DB_PORT']);
        self::assertSame('wp', $r['DB_USER']);
        self::assertSame('sha256:' . hash('sha256', self::$canary), $r['DB_PASSWORD']);
        self::assertSame('shop', $r['DB_NAME']);
        self::assertSame('mysql', $r['DB_ENGINE']);
        self::assertSame(1, $r['fetches'], 'ssm_db_config() after it is served from the cache');
    }

    public function test_define_defines_none_when_one_constant_exists(): void
    {
        $name = $this->parameterName('define-clash');
        self::$moto->putParameter($name, 'postgresql://wp:' . rawurlencode(self::$canary) . '@db.internal/shop');
        $r = PhpProcess::json('define("DB_NAME", "mine"); function boot($pw) { ssm_db_config_define(' . var_export($name, true) . '); } '
            . 'try { boot(getenv("SSM_TEST_CANARY")); $result = ["code" => null, "message" => "no exception"]; } catch (SsmDbConfigException $e) { '
            . '$result = ["code" => $e->getCode(), "message" => $e->getMessage(), "trace" => $e->getTraceAsString(), '
            . '"defined" => array_values(array_filter(["DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_ENGINE"], "defined")), '
            . '"DB_NAME" => DB_NAME]; }');
        self::assertSame(\SsmDbConfigException::BAD_CONFIGURATION, $r['code']);
        self::assertStringContainsString('DB_NAME is already defined', $r['message']);
        self::assertSame([], $r['defined'], 'no constant is defined');
        self::assertSame('mine', $r['DB_NAME']);
        self::assertStringNotContainsString(self::$canary, $r['message'] . $r['trace'] . $r['_stderr']);
        self::assertStringNotContainsString('Canary', $r['trace']);
    }

    public function test_define_failure_defines_nothing(): void
    {
        $name = $this->parameterName('define-missing');
        $r = PhpProcess::json('try { ssm_db_config_define(' . var_export($name, true) . '); $result = ["code" => null, "message" => "no exception"]; } '
            . 'catch (SsmDbConfigException $e) { $result = ["code" => $e->getCode(), "message" => $e->getMessage(), '
            . '"defined" => array_values(array_filter(["DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_ENGINE"], "defined"))]; }');
        self::assertSame(\SsmDbConfigException::NOT_FOUND, $r['code']);
        self::assertStringContainsString("\"$name\" was not found", $r['message']);
        self::assertSame([], $r['defined']);
    }

    public function test_default_parameter_comes_from_ini(): void
    {
        $name = $this->parameterName('ini');
        self::$moto->putParameter($name, 'mysql://u:p@from-ini/d');
        $r = PhpProcess::json('$result = ssm_db_config();', ['ssm_db_config.parameter' => $name]);
        self::assertSame('from-ini:3306', $r['DB_HOST']);
    }

    public function test_status_reports_cache_and_counters_without_secrets(): void
    {
        $name = $this->parameterName('status');
        self::$moto->putParameter($name, 'postgresql://statususer:' . self::$canary . '@status-host:5439/statusdb?sslmode=verify-full');
        $r = PhpProcess::json('ssm_db_config(); ssm_db_config(); $result = ssm_db_config_status();', ['ssm_db_config.parameter' => $name]);
        foreach (
            ['extension_version', 'pid', 'parameter', 'region', 'cached', 'age_seconds', 'ttl_seconds', 'version',
                  'hits', 'misses', 'fetches', 'errors', 'last_error', 'last_fetch_duration_ms'] as $key
        ) {
            self::assertArrayHasKey($key, $r);
        }
        self::assertSame($name, $r['parameter']);
        self::assertSame('us-east-1', $r['region']);
        self::assertTrue($r['cached']);
        self::assertTrue($r['fresh']);
        self::assertSame(60, $r['ttl_seconds']);
        self::assertSame(1, $r['version']);
        self::assertSame(['hits' => 1, 'misses' => 1, 'fetches' => 1, 'errors' => 0], array_intersect_key($r, array_flip(['hits', 'misses', 'fetches', 'errors'])));
        self::assertSame('status-host', $r['host']);
        self::assertSame('statususer', $r['user']);
        self::assertSame(['sslmode' => 'verify-full'], $r['options']);
        self::assertGreaterThan(0, $r['last_fetch_duration_ms']);
        self::assertLessThan(5, $r['age_seconds']);
        self::assertStringNotContainsString(self::$canary, json_encode($r));
    }

    public function test_status_before_any_fetch(): void
    {
        $r = PhpProcess::json('$result = ssm_db_config_status();');
        self::assertFalse($r['cached']);
        self::assertNull($r['age_seconds']);
        self::assertNull($r['last_error']);
        self::assertSame(0, $r['fetches']);
    }

    public function test_phpinfo_shows_section_directives_and_counters(): void
    {
        $name = $this->parameterName('info');
        self::$moto->putParameter($name, 'postgresql://u:' . self::$canary . '@h/d');
        $out = PhpProcess::run('ssm_db_config(); phpinfo(INFO_MODULES);', ['ssm_db_config.parameter' => $name]);
        self::assertStringContainsString('ssm_db_config support => enabled', $out['stdout']);
        foreach (
            ['ssm_db_config.parameter', 'ssm_db_config.region', 'ssm_db_config.endpoint_url', 'ssm_db_config.ttl', 'ssm_db_config.timeout_ms',
                  'Cache hits', 'Cache misses', 'Cached value age', 'Version'] as $needle
        ) {
            self::assertStringContainsString($needle, $out['stdout']);
        }
        self::assertStringNotContainsString(self::$canary, $out['stdout']);
    }

    public function test_extension_is_known_by_its_name(): void
    {
        self::assertTrue(extension_loaded('ssm_db_config'));
        self::assertContains('ssm_db_config', get_loaded_extensions());
        self::assertTrue(is_subclass_of(\SsmDbConfigException::class, \RuntimeException::class));
        $f = new \ReflectionFunction('ssm_db_config');
        self::assertSame(0, $f->getNumberOfRequiredParameters());
        self::assertSame('parameter', $f->getParameters()[0]->getName());
    }

    public function test_stub_declares_every_function_with_its_signature(): void
    {
        $stub = file_get_contents(__DIR__ . '/../ext/ssm_db_config.stub.php');
        preg_match_all('/^function (\w+)\((.*)\): (\w+) \{\}$/m', $stub, $m, PREG_SET_ORDER);
        $declared = [];
        foreach ($m as [, $function, $parameters, $returns]) {
            $declared[$function] = "($parameters): $returns";
        }
        $actual = [];
        foreach (get_extension_funcs('ssm_db_config') as $function) {
            $f = new \ReflectionFunction($function);
            $parameters = array_map(fn ($p) => $p->getType() . ' $' . $p->getName() . ($p->isOptional() ? ' = ' . strtolower(var_export($p->getDefaultValue(), true)) : ''), $f->getParameters());
            $actual[$function] = '(' . implode(', ', $parameters) . '): ' . $f->getReturnType();
        }
        ksort($declared);
        ksort($actual);
        self::assertSame($actual, $declared);
    }

    public function test_arguments_are_type_checked(): void
    {
        try {
            ssm_db_config(42);
            self::fail('an int is not a parameter name');
        } catch (\TypeError $e) {
            self::assertStringContainsString('must be of type ?string, int given', $e->getMessage());
        }
        try {
            ssm_db_config('/a', '/b');
            self::fail('two arguments');
        } catch (\ArgumentCountError $e) {
            self::assertStringContainsString('at most 1 argument', $e->getMessage());
        }
        try {
            ssm_db_config_define(42);
            self::fail('an int is not a parameter name');
        } catch (\TypeError $e) {
            self::assertStringContainsString('ssm_db_config_define(): Argument #1 ($parameter) must be of type ?string, int given', $e->getMessage());
        }
        $f = new \ReflectionFunction('ssm_db_config_define');
        self::assertSame('void', (string) $f->getReturnType());
        self::assertSame(0, $f->getNumberOfRequiredParameters());
    }
}
