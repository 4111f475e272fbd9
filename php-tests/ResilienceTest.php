<?php

declare(strict_types=1);

namespace SsmDbConfig\Tests;

// PHPUnit 9 (Debian 12) reads @dataProvider, PHPUnit 11 (Debian 13) the attribute.
use PHPUnit\Framework\Attributes\DataProvider;

/**
 * SSM failing in every way the proxy can make it fail: a value already
 * cached keeps being served (stale) without the request waiting; with
 * nothing cached the documented exception comes within the budget; while
 * SSM fails a host does not hammer it; rotated credentials from Secrets
 * Manager are picked up.
 */
final class ResilienceTest extends TestCase
{
    /** @return array<string, array{string, int}> mode => [mode, code when nothing is cached] */
    public static function faults(): array
    {
        return [
            'connection refused' => ['refuse', \SsmDbConfigException::NETWORK],
            'accepts and hangs' => ['hang', \SsmDbConfigException::TIMEOUT],
            'HTTP 500' => ['500', \SsmDbConfigException::SERVICE],
            'throttled' => ['throttle', \SsmDbConfigException::THROTTLED],
            'reset mid-body' => ['reset', \SsmDbConfigException::NETWORK],
            'malformed body' => ['garbage', \SsmDbConfigException::SERVICE],
        ];
    }

    /** @dataProvider faults */
    #[DataProvider('faults')]
    public function test_cached_value_is_served_stale_at_once_while_ssm_fails(string $mode, int $code): void
    {
        $name = $this->parameterName("stale-$mode");
        self::$moto->putParameter($name, 'postgresql://u:p@cached-host/d');
        $body = <<<'PHP'
            ssm_db_config();
            $ctx = stream_context_create(["http" => ["method" => "POST", "header" => "Content-Type: application/json", "content" => json_encode(["mode" => getenv("FAULT"), "delay_ms" => 5000])]]);
            file_get_contents(getenv("PROXY_URL") . "/__proxy/fault", false, $ctx);
            usleep(1_100_000);                       // past the TTL
            $times = [];
            for ($i = 0; $i < 30; $i++) {            // 30 requests' worth, over 1.5 s
                $t = hrtime(true); $c = ssm_db_config(); $times[] = (hrtime(true) - $t) / 1e6;
                if ($c["DB_HOST"] !== "cached-host:5432") { throw new Exception("wrong value"); }
                usleep(50_000);
            }
            $result = ["max_ms" => max($times), "status" => ssm_db_config_status()];
            PHP;
        $r = PhpProcess::json($body, ['ssm_db_config.parameter' => $name, 'ssm_db_config.ttl' => '1', 'ssm_db_config.timeout_ms' => '500'], ['FAULT' => $mode]);
        self::assertArrayNotHasKey('exception', $r, $r['message'] ?? '');
        self::assertLessThan(50, $r['max_ms'], 'no call waited for SSM');
        $s = $r['status'];
        self::assertSame('stale', $s['state']);
        self::assertTrue($s['stale']);
        self::assertGreaterThanOrEqual(1, $s['consecutive_failures']);
        self::assertSame($code, $s['last_error']['code'], $s['last_error']['message']);
        self::assertStringContainsString($name, (string) $s['stale_reason']);
        self::assertLessThanOrEqual(2, $s['errors'], 'at most one attempt per backoff interval, not one per call');
    }

    /** @dataProvider faults */
    #[DataProvider('faults')]
    public function test_nothing_cached_gives_the_documented_exception_within_the_budget(string $mode, int $code): void
    {
        $name = $this->parameterName("cold-$mode");
        self::$moto->putParameter($name, 'postgresql://u:p@h/d');
        Proxy::fault($mode, 5000);
        $r = PhpProcess::json(
            '$t = hrtime(true); try { ssm_db_config(); $result = ["ok" => true]; } catch (SsmDbConfigException $e) { $result = ["code" => $e->getCode(), "message" => $e->getMessage(), "ms" => (hrtime(true) - $t) / 1e6]; }',
            ['ssm_db_config.parameter' => $name, 'ssm_db_config.timeout_ms' => '600']
        );
        self::assertSame($code, $r['code'] ?? null, $r['message'] ?? 'no exception');
        self::assertLessThan(600 + 150, $r['ms'], 'the call ended within the budget');
        self::assertStringContainsString($name, $r['message']);
    }

    public function test_slow_answer_within_budget_succeeds(): void
    {
        $name = $this->parameterName('slow');
        self::$moto->putParameter($name, 'postgresql://u:p@slow-host/d');
        Proxy::fault('slow', 300);
        $r = PhpProcess::json(
            '$t = hrtime(true); $c = ssm_db_config(); $result = ["host" => $c["DB_HOST"], "ms" => (hrtime(true) - $t) / 1e6];',
            ['ssm_db_config.parameter' => $name, 'ssm_db_config.timeout_ms' => '1000']
        );
        self::assertSame('slow-host:5432', $r['host']);
        self::assertGreaterThan(250, $r['ms']);
    }

    public function test_while_ssm_fails_the_process_backs_off_instead_of_asking_per_call(): void
    {
        $name = $this->parameterName('backoff');
        self::$moto->putParameter($name, 'postgresql://u:p@h/d');
        $body = <<<'PHP'
            // The first fetch, within the tight budget below, may miss it on a
            // loaded machine (SDK set-up, moto): take the value first, then count.
            for ($try = 1; ; $try++) {
                try { ssm_db_config(); break; } catch (SsmDbConfigException $e) { if ($try === 40) { throw $e; } usleep(200_000); }
            }
            $errorsBefore = ssm_db_config_status()["errors"];
            $ctx = stream_context_create(["http" => ["method" => "POST", "header" => "Content-Type: application/json", "content" => json_encode(["mode" => "500"])]]);
            file_get_contents(getenv("PROXY_URL") . "/__proxy/reset", false, stream_context_create(["http" => ["method" => "POST"]]));
            file_get_contents(getenv("PROXY_URL") . "/__proxy/fault", false, $ctx);
            $deadline = microtime(true) + 4.0;
            $calls = 0;
            while (microtime(true) < $deadline) { ssm_db_config(); $calls++; usleep(2_000); }
            // An attempt may be in flight (budget 300 ms): let it end and take
            // its answer in, then the host waits before the next one.
            for ($i = 0; $i < 5; $i++) {
                usleep(400_000);
                ssm_db_config();
                $status = ssm_db_config_status();
                if ($status["next_attempt_in_seconds"] !== null) { break; }
            }
            $result = ["calls" => $calls, "status" => $status, "errors_before" => $errorsBefore];
            PHP;
        $r = PhpProcess::json($body, ['ssm_db_config.parameter' => $name, 'ssm_db_config.ttl' => '1', 'ssm_db_config.timeout_ms' => '300']);
        self::assertArrayHasKey('calls', $r, json_encode(array_diff_key($r, ['trace' => 1])));
        self::assertGreaterThan(100, $r['calls'], 'calls went on (served stale) meanwhile');
        // Backoff after failures 1, 2, 3: at least 0.5, 1, 2 s, so in 4 s at
        // most 4 attempts, each at most 4 tries (retries inside the budget).
        self::assertLessThanOrEqual(4, $r['status']['errors'] - $r['errors_before']);
        self::assertLessThanOrEqual(16, Proxy::getParameterCalls());
        self::assertGreaterThan(0, $r['status']['next_attempt_in_seconds']);
    }

    public function test_rotated_secret_is_picked_up_within_a_ttl_from_one_get_parameters_call(): void
    {
        $secret = 'rds!db-' . bin2hex(random_bytes(4));
        $endpoint = $this->parameterName('endpoint');
        self::$moto->putParameter($endpoint, 'postgresql://rds-writer.internal:5432/shop', 'String');
        self::$moto->createSecret($secret, json_encode(['username' => 'master', 'password' => 'before-rotation']));
        $creds = "/aws/reference/secretsmanager/$secret";
        $body = <<<'PHP'
            $a = ssm_db_config();
            usleep(1_200_000);                         // the secret rotates meanwhile; past the TTL
            ssm_db_config();                           // stale: refreshes in the background
            $until = hrtime(true) + 5e9;               // until the refresh has landed
            do {
                usleep(20_000);
                $b = ssm_db_config();
                $s = ssm_db_config_status();
            } while ($b["DB_PASSWORD"] === $a["DB_PASSWORD"] && hrtime(true) < $until);
            $result = ["before" => hash("sha256", $a["DB_PASSWORD"]), "after" => hash("sha256", $b["DB_PASSWORD"]),
                       "user" => $b["DB_USER"], "host" => $b["DB_HOST"], "status" => $s];
            PHP;
        $r = PhpProcess::json(
            $body,
            ['ssm_db_config.parameter' => $endpoint, 'ssm_db_config.credentials_parameter' => $creds, 'ssm_db_config.ttl' => '1'],
            [],
            function () use ($secret) {
                self::$moto->putSecretValue($secret, json_encode(['username' => 'master', 'password' => 'after-rotation'])); 
            }
        );
        self::assertSame(hash('sha256', 'before-rotation'), $r['before']);
        self::assertSame(hash('sha256', 'after-rotation'), $r['after'], 'the rotated password arrived');
        self::assertSame('master', $r['user']);
        self::assertSame('rds-writer.internal:5432', $r['host']);
        self::assertSame($creds, $r['status']['credentials_parameter']);
        self::assertIsInt($r['status']['credentials_version']);
        self::assertSame(1, $r['status']['version']);
        // Host and password come from one snapshot: one GetParameters call per
        // fetch, never a GetParameter for either name.
        self::assertSame(2, Proxy::getParameterCalls('AmazonSSM.GetParameters'));
        self::assertSame(0, Proxy::getParameterCalls('AmazonSSM.GetParameter'));
    }
}
