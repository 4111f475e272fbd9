<?php

declare(strict_types=1);

namespace SsmDbConfig\Tests;

/**
 * Every error kind, with its stable code, a message that names the parameter
 * and what is wrong, and never the value. Faults moto cannot produce (a
 * throttle, a 5xx, a hang) come from the proxy in front of it.
 */
final class ErrorsTest extends TestCase
{
    /** Runs ssm_db_config() in a child and returns the exception it threw. */
    private function failure(string $parameter, array $ini = [], array $env = []): array
    {
        $r = PhpProcess::json('function connect_with($pw) { return ssm_db_config(' . var_export($parameter, true) . '); } $result = connect_with(getenv("SSM_TEST_CANARY"));', $ini, $env);
        self::assertSame(\SsmDbConfigException::class, $r['exception'] ?? null, 'an SsmDbConfigException');
        self::assertStringNotContainsString(self::$canary, $r['message'] . $r['trace'] . $r['_stderr']);
        // The caller's argument (the canary) must not be in the trace.
        self::assertStringNotContainsString('Canary', $r['trace']);
        return $r;
    }

    public function test_missing_parameter_is_not_found(): void
    {
        $name = $this->parameterName('missing');
        $r = $this->failure($name);
        self::assertSame(\SsmDbConfigException::NOT_FOUND, $r['code']);
        self::assertSame(1, $r['code']);
        self::assertStringContainsString("\"$name\" was not found", $r['message']);
    }

    public function test_an_endpoint_from_the_environment_follows_the_directive_rules_unquoted(): void
    {
        $name = $this->parameterName('envendpoint');
        foreach (
            [
                'AWS_ENDPOINT_URL' => 'http://u:' . self::$canary . '@127.0.0.1:1',
                'AWS_ENDPOINT_URL_SSM' => 'http://10.255.255.1:80',
            ] as $variable => $url
        ) {
            $r = $this->failure($name, [], [$variable => $url]);
            self::assertSame(\SsmDbConfigException::BAD_CONFIGURATION, $r['code'], $r['message']);
            self::assertStringContainsString("the environment variable $variable is refused (value not shown)", $r['message']);
            self::assertStringNotContainsString('10.255.255.1', $r['message'] . $r['_stderr']);
            $status = PhpProcess::run('echo json_encode(ssm_db_config_status());', [], [$variable => $url]);
            self::assertStringNotContainsString(self::$canary, $status['stdout'] . $status['stderr']);
        }
    }

    public function test_missing_version_is_not_found(): void
    {
        $name = $this->parameterName('version');
        self::$moto->putParameter($name, 'postgresql://u:p@h/d');
        $r = $this->failure("$name:7");
        self::assertSame(\SsmDbConfigException::NOT_FOUND, $r['code']);
    }

    public function test_malformed_value_is_invalid_and_not_echoed(): void
    {
        $name = $this->parameterName('invalid');
        self::$moto->putParameter($name, 'postgresql://user:' . self::$canary . '@host-without-db');
        $r = $this->failure($name);
        self::assertSame(\SsmDbConfigException::INVALID_VALUE, $r['code']);
        self::assertStringContainsString($name, $r['message']);
        self::assertStringContainsString('no database name', $r['message']);
    }

    public function test_json_with_wrong_types_is_invalid(): void
    {
        $name = $this->parameterName('json');
        self::$moto->putParameter($name, '{"engine":"postgres","host":"h","port":true,"username":"u","password":"' . self::$canary . '","dbname":"d"}');
        $r = $this->failure($name);
        self::assertSame(\SsmDbConfigException::INVALID_VALUE, $r['code']);
        self::assertStringContainsString('"port"', $r['message']);
    }

    public function test_throttling_is_throttled(): void
    {
        $name = $this->parameterName('throttle');
        self::$moto->putParameter($name, 'postgresql://u:p@h/d');
        Proxy::fault('throttle');
        $r = $this->failure($name);
        self::assertSame(\SsmDbConfigException::THROTTLED, $r['code']);
        self::assertStringContainsString('throttled', $r['message']);
    }

    public function test_server_error_is_service(): void
    {
        $name = $this->parameterName('500');
        Proxy::fault('500');
        $r = $this->failure($name);
        self::assertSame(\SsmDbConfigException::SERVICE, $r['code']);
        self::assertStringContainsString('HTTP 500', $r['message']);
        self::assertStringNotContainsString('injected', $r['message'], 'the AWS message body is not passed on');
    }

    public function test_hanging_endpoint_times_out_within_budget(): void
    {
        $name = $this->parameterName('hang');
        Proxy::fault('hang', 10_000);
        $r = $this->failure($name, ['ssm_db_config.timeout_ms' => '400']);
        self::assertSame(\SsmDbConfigException::TIMEOUT, $r['code']);
        self::assertStringContainsString('timed out after 400 ms', $r['message']);
        self::assertLessThan(3.0, $r['_seconds'], 'the process (startup included) ends soon after the budget');
    }

    public function test_refused_connection_is_network(): void
    {
        $name = $this->parameterName('refused');
        $port = Fpm::freePort();
        $r = $this->failure($name, ['ssm_db_config.endpoint_url' => "http://127.0.0.1:$port", 'ssm_db_config.timeout_ms' => '1500']);
        self::assertSame(\SsmDbConfigException::NETWORK, $r['code']);
        self::assertStringContainsString('connection refused', $r['message']);
    }

    public function test_no_credentials_anywhere(): void
    {
        $home = sys_get_temp_dir() . '/ssm-nocreds-' . bin2hex(random_bytes(3));
        mkdir($home);
        $r = $this->failure($this->parameterName('nocreds'), [], [
            'AWS_ACCESS_KEY_ID' => false, 'AWS_SECRET_ACCESS_KEY' => false, 'AWS_SESSION_TOKEN' => false,
            'AWS_PROFILE' => false, 'HOME' => $home, 'AWS_CONFIG_FILE' => "$home/none", 'AWS_SHARED_CREDENTIALS_FILE' => "$home/none",
            'AWS_EC2_METADATA_DISABLED' => 'true',
        ]);
        self::assertSame(\SsmDbConfigException::NO_CREDENTIALS, $r['code']);
        self::assertStringContainsString('no usable AWS credentials', $r['message']);
        rmdir($home);
    }

    public function test_iam_denial_is_access_denied_and_unknown_key_is_no_credentials(): void
    {
        // moto with IAM enforcement after the first three (seeding) calls:
        // a user without a policy is denied, an unknown key is not recognised.
        $server = new MotoServer(['INITIAL_NO_AUTH_ACTION_COUNT' => '3']);
        try {
            $name = $this->parameterName('denied');
            $server->client->query('iam', ['Action' => 'CreateUser', 'UserName' => 'wp', 'Version' => '2010-05-08']);
            $xml = $server->client->query('iam', ['Action' => 'CreateAccessKey', 'UserName' => 'wp', 'Version' => '2010-05-08']);
            $server->client->putParameter($name, 'postgresql://u:' . self::$canary . '@h/d');
            preg_match('#<AccessKeyId>(.+?)</AccessKeyId>#', $xml, $id);
            preg_match('#<SecretAccessKey>(.+?)</SecretAccessKey>#', $xml, $secret);
            $ini = ['ssm_db_config.endpoint_url' => $server->client->url];

            $r = $this->failure($name, $ini, ['AWS_ACCESS_KEY_ID' => $id[1], 'AWS_SECRET_ACCESS_KEY' => $secret[1]]);
            self::assertSame(\SsmDbConfigException::ACCESS_DENIED, $r['code'], $r['message']);
            self::assertStringContainsString("access to SSM parameter \"$name\" was denied", $r['message']);

            $r = $this->failure($name, $ini, ['AWS_ACCESS_KEY_ID' => 'AKIAUNKNOWNKEY000000', 'AWS_SECRET_ACCESS_KEY' => 'nope']);
            self::assertSame(\SsmDbConfigException::NO_CREDENTIALS, $r['code'], $r['message']);
            self::assertStringContainsString('does not recognise the access key', $r['message']);
        } finally {
            $server->stop();
        }
    }

    public function test_no_parameter_configured_is_bad_configuration(): void
    {
        $r = PhpProcess::json('$result = ssm_db_config();');
        self::assertSame(\SsmDbConfigException::BAD_CONFIGURATION, $r['code']);
        self::assertStringContainsString('ssm_db_config.parameter', $r['message']);
    }

    public function test_no_region_is_bad_configuration(): void
    {
        $home = sys_get_temp_dir() . '/ssm-noregion-' . bin2hex(random_bytes(3));
        mkdir($home);
        $r = $this->failure($this->parameterName('noregion'), [], [
            'AWS_REGION' => false, 'AWS_DEFAULT_REGION' => false, 'HOME' => $home,
            'AWS_CONFIG_FILE' => "$home/none", 'AWS_EC2_METADATA_DISABLED' => 'true',
        ]);
        self::assertSame(\SsmDbConfigException::BAD_CONFIGURATION, $r['code']);
        self::assertStringContainsString('region', $r['message']);
        rmdir($home);
    }

    public function test_failure_is_counted_and_reported_in_status(): void
    {
        $name = $this->parameterName('status-error');
        $r = PhpProcess::json('try { ssm_db_config(); } catch (SsmDbConfigException $e) {} $result = ssm_db_config_status();', ['ssm_db_config.parameter' => $name]);
        self::assertSame(1, $r['errors']);
        self::assertSame('not_found', $r['last_error']['kind']);
        self::assertSame(1, $r['last_error']['code']);
        self::assertStringContainsString($name, $r['last_error']['message']);
        self::assertFalse($r['cached']);
    }

    public function test_failed_refresh_keeps_the_cached_value(): void
    {
        $name = $this->parameterName('keep');
        self::$moto->putParameter($name, 'postgresql://u:p@kept/d');
        $r = PhpProcess::json(
            'ssm_db_config(); usleep(1_100_000); file_get_contents(getenv("PROXY_URL") . "/__proxy/fault", false, stream_context_create(["http" => ["method" => "POST", "header" => "Content-Type: application/json", "content" => "{\"mode\":\"500\"}"]]));'
            . ' try { ssm_db_config_refresh(); $result = "no exception"; } catch (SsmDbConfigException $e) { $result = ssm_db_config(); }',
            ['ssm_db_config.parameter' => $name]
        );
        self::assertSame('kept:5432', $r['DB_HOST']);
    }

    public function test_bad_ini_values_warn_naming_directive_and_range_then_use_defaults(): void
    {
        $out = PhpProcess::run('echo json_encode(ssm_db_config_status());', [
            'ssm_db_config.ttl' => 'soon', 'ssm_db_config.timeout_ms' => '5', 'ssm_db_config.endpoint_url' => 'ftp://nowhere',
        ]);
        self::assertStringContainsString('ssm_db_config.ttl = "soon" refused: it must be an integer from 1 to 86400 (seconds); using the default', $out['stderr']);
        self::assertStringContainsString('ssm_db_config.timeout_ms = "5" refused: it must be an integer from 50 to 60000', $out['stderr']);
        self::assertStringContainsString('ssm_db_config.endpoint_url = (value not shown) refused: it must be an https:// URL (http:// only to a loopback address)', $out['stderr']);
        $status = json_decode($out['stdout'], true);
        self::assertSame(60, $status['ttl_seconds']);
        self::assertSame(2000, $status['timeout_ms']);
    }

    public function test_a_number_spelled_another_way_is_refused_and_ini_get_shows_the_number_in_effect(): void
    {
        foreach (['+30', ' 30', '030'] as $spelling) {
            $out = PhpProcess::run('echo json_encode([ini_get("ssm_db_config.max_stale"), ssm_db_config_status()["max_stale_seconds"] ?? null]);', [
                'ssm_db_config.max_stale' => $spelling,
            ]);
            self::assertStringContainsString('ssm_db_config.max_stale = "' . $spelling . '" refused: it must be written in digits only', $out['stderr'], $spelling);
            self::assertSame('["86400",86400]', trim($out['stdout']), $spelling);
        }
    }

    public function test_a_url_passed_as_the_name_is_refused_before_any_request_and_never_echoed(): void
    {
        // getenv('DATABASE_URL') passed where the parameter name belongs.
        $url = 'mysql://wp:' . self::$canary . '@db/wp';
        $r = PhpProcess::json(
            '$result = ["status" => null]; try { ssm_db_config(getenv("PASSED")); } catch (SsmDbConfigException $e) {'
            . ' $result = ["code" => $e->getCode(), "message" => $e->getMessage(), "trace" => $e->getTraceAsString()]; }'
            . ' $result["status"] = json_encode(ssm_db_config_status());'
            . ' try { ssm_db_config_refresh(getenv("PASSED")); } catch (SsmDbConfigException $e) { $result["refresh"] = $e->getCode(); }',
            [],
            ['PASSED' => $url]
        );
        self::assertSame(\SsmDbConfigException::BAD_CONFIGURATION, $r['code']);
        self::assertSame(\SsmDbConfigException::BAD_CONFIGURATION, $r['refresh']);
        self::assertStringContainsString('looks like a connection URL', $r['message']);
        foreach (['message', 'trace', 'status', '_stderr'] as $where) {
            self::assertStringNotContainsString(self::$canary, (string) $r[$where], "not in the $where");
            self::assertStringNotContainsString('mysql://', (string) $r[$where], "not in the $where");
        }
        self::assertSame(0, Proxy::getParameterCalls(), 'no request to SSM');
    }

    public function test_names_ssm_would_refuse_are_refused_before_any_request(): void
    {
        foreach (["/app/db name", "/app/db\r", "/app/db?v=1", str_repeat('/a', 1025), '{"host":"h"}'] as $bad) {
            $r = PhpProcess::json('$result = ssm_db_config(' . var_export($bad, true) . ');');
            self::assertSame(\SsmDbConfigException::BAD_CONFIGURATION, $r['code'], var_export($bad, true));
            self::assertStringContainsString('the SSM parameter name passed to ssm_db_config() is not valid', $r['message']);
        }
        self::assertSame(0, Proxy::getParameterCalls());
    }

    public function test_a_secret_reference_cut_at_an_ini_operator_is_warned(): void
    {
        // php.ini's parser ends an unquoted value at '!': the reference arrives cut short.
        $dir = sys_get_temp_dir() . '/ssm-ini-' . bin2hex(random_bytes(4));
        mkdir($dir);
        // A leading ':' keeps PHP's own scan directory (where the installed package's .ini is).
        $scan = ":$dir";
        file_put_contents("$dir/zz-test.ini", "ssm_db_config.credentials_parameter=/aws/reference/secretsmanager/rds!db-0f1e2d3c\n");
        $out = PhpProcess::run('echo ini_get("ssm_db_config.credentials_parameter");', [], ['PHP_INI_SCAN_DIR' => $scan]);
        self::assertSame('/aws/reference/secretsmanager/rds', $out['stdout'], 'what PHP reads from the unquoted line');
        self::assertStringContainsString('ssm_db_config.credentials_parameter looks cut short at an INI special character', $out['stderr']);
        self::assertStringContainsString('quote the value', $out['stderr']);
        file_put_contents("$dir/zz-test.ini", "ssm_db_config.credentials_parameter=\"/aws/reference/secretsmanager/rds!db-0f1e2d3c\"\n");
        $out = PhpProcess::run('echo ini_get("ssm_db_config.credentials_parameter");', [], ['PHP_INI_SCAN_DIR' => $scan]);
        self::assertSame('/aws/reference/secretsmanager/rds!db-0f1e2d3c', $out['stdout'], 'quoted, it is read whole');
        self::assertStringNotContainsString('cut short', $out['stderr']);
        unlink("$dir/zz-test.ini");
        rmdir($dir);
    }

    public function test_directives_are_system_level(): void
    {
        self::assertFalse(@ini_set('ssm_db_config.parameter', '/elsewhere'));
        self::assertFalse(@ini_set('ssm_db_config.endpoint_url', 'http://evil.example'));
    }
}
