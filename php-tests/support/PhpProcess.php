<?php

declare(strict_types=1);

namespace SsmDbConfig\Tests;

/**
 * Runs PHP code in a fresh `php` process with the extension loaded: php.ini
 * directives are system-level and the AWS environment is captured at module
 * startup, so cases that change either need a process of their own.
 */
final class PhpProcess
{
    /**
     * What a child `php` or `php-fpm` needs on its command line to load the
     * extension: `-d extension=$SSM_DB_CONFIG_SO`, or nothing when
     * SSM_DB_CONFIG_INSTALLED=1 (the Debian package's conf.d link loads it;
     * tests/suites/packages.sh), so that the installed package is what runs.
     *
     * @return list<string>
     */
    public static function extensionArgs(): array
    {
        if (getenv('SSM_DB_CONFIG_INSTALLED') === '1') {
            return [];
        }
        return ['-d', 'extension=' . getenv('SSM_DB_CONFIG_SO')];
    }

    /**
     * @param array<string, string> $ini  extra -d directives
     * @param array<string, string|false> $env  environment changes (false removes)
     * @return array{stdout: string, stderr: string, exit: int, seconds: float}
     */
    public static function run(string $code, array $ini = [], array $env = [], int $timeout = 30, ?callable $meanwhile = null): array
    {
        $cmd = ['timeout', (string) $timeout, PHP_BINARY, ...self::extensionArgs(), '-d', 'display_errors=stderr'];
        foreach ($ini as $k => $v) {
            array_push($cmd, '-d', "$k=$v");
        }
        array_push($cmd, '-r', $code);
        $environment = getenv();
        foreach ($env as $k => $v) {
            if ($v === false) {
                unset($environment[$k]);
            } else {
                $environment[$k] = $v;
            }
        }
        $started = microtime(true);
        $proc = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, $environment);
        $stderr = '';
        if ($meanwhile !== null) {
            // For a change the test makes while the child runs: 600 ms after
            // the start, when a child that fetched at once and then sleeps
            // for more than a second is asleep.
            usleep(600_000);
            $meanwhile();
        }
        $stdout = stream_get_contents($pipes[1]);
        $stderr .= stream_get_contents($pipes[2]);
        $exit = proc_close($proc);
        return ['stdout' => (string) $stdout, 'stderr' => (string) $stderr, 'exit' => $exit, 'seconds' => microtime(true) - $started];
    }

    /**
     * Runs `$body`, which must evaluate `$result`, and decodes it from JSON.
     * Exceptions are reported as ['exception' => class, 'code' => n, 'message' => s, 'trace' => s].
     *
     * @return array<mixed>
     */
    public static function json(string $body, array $ini = [], array $env = [], ?callable $meanwhile = null): array
    {
        $code = 'try { ' . $body . ' } catch (Throwable $e) { $result = ["exception" => get_class($e), "code" => $e->getCode(), '
            . '"message" => $e->getMessage(), "trace" => $e->getTraceAsString()]; } '
            // The password never travels back to the test as text: only its hash.
            . 'if (is_array($result) && isset($result["DB_PASSWORD"])) { $result["DB_PASSWORD"] = "sha256:" . hash("sha256", $result["DB_PASSWORD"]); } '
            . 'echo json_encode($result);';
        $out = self::run($code, $ini, $env, 30, $meanwhile);
        $decoded = json_decode($out['stdout'], true);
        if (!is_array($decoded)) {
            throw new \RuntimeException("php exited {$out['exit']} without JSON; stderr: " . substr($out['stderr'], 0, 500));
        }
        $decoded['_stderr'] = $out['stderr'];
        $decoded['_seconds'] = $out['seconds'];
        return $decoded;
    }
}
