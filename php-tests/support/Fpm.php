<?php

declare(strict_types=1);

namespace SsmDbConfig\Tests;

/**
 * A php-fpm master of our own on a free loopback port, in a temporary folder,
 * with the extension loaded into the master (so workers inherit it by fork,
 * as in production) and Debian's default clear_env = yes. When the tests run
 * as root the master runs as `nobody`: opcache.preload only runs in the master
 * when the master is not root, and that is the case worth testing.
 */
final class Fpm
{
    public string $dir;
    public int $port;
    /** @var array<string, int> each pool's port, by pool name */
    public array $ports = [];
    /** @var resource */
    private $proc;

    /**
     * @param array<string, string> $ini  -d directives for the master
     * @param array<string, string> $env  the master's environment (workers get it cleared)
     * @param string $pool  more lines for the pool's section (e.g. `pm.max_requests = 5`)
     */
    public static function start(array $ini, array $env, int $workers = 4, string $pool = ''): self
    {
        return self::launch($ini, $env, ['pool' => "pm.max_children = $workers\n$pool"], false);
    }

    /**
     * One master with several pools, as a host serving several sites runs it:
     * each pool gets its own port (`$fpm->ports[$name]`) and its lines
     * (`user = ...`, `php_admin_value[...] = ...`). Run as root, the master
     * stays root so that each pool's `user` applies; otherwise every pool
     * runs as the current user (and `user` lines must be left out).
     *
     * @param array<string, string> $pools pool name => lines of its section
     */
    public static function startPools(array $ini, array $env, array $pools): self
    {
        return self::launch($ini, $env, $pools, true);
    }

    /** @param array<string, string> $pools */
    private static function launch(array $ini, array $env, array $pools, bool $rootMaster): self
    {
        $fpm = new self();
        $fpm->dir = sys_get_temp_dir() . '/ssm-fpm-' . bin2hex(random_bytes(4));
        mkdir($fpm->dir, 0777);
        chmod($fpm->dir, 0777);
        $conf = "[global]\nerror_log = $fpm->dir/fpm.log\ndaemonize = no\npid = $fpm->dir/fpm.pid\n";
        foreach ($pools as $name => $lines) {
            $fpm->ports[$name] = self::freePort();
            // clear_env stays at its default, yes: workers get an empty environment.
            $conf .= "[$name]\nlisten = 127.0.0.1:{$fpm->ports[$name]}\npm = static\ncatch_workers_output = yes\n"
                . (str_contains($lines, 'pm.max_children') ? '' : "pm.max_children = 2\n") . "$lines\n";
        }
        $fpm->port = reset($fpm->ports);
        file_put_contents("$fpm->dir/fpm.conf", $conf);
        $cmd = [];
        if (posix_geteuid() === 0 && !$rootMaster) {
            array_push($cmd, 'setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups');
        }
        array_push($cmd, self::binary(), '-F', '-y', "$fpm->dir/fpm.conf", '-p', $fpm->dir);
        array_push($cmd, ...PhpProcess::extensionArgs());
        array_push($cmd, '-d', 'error_log=' . "$fpm->dir/php.log");
        foreach ($ini as $k => $v) {
            array_push($cmd, '-d', "$k=$v");
        }
        // What scripts/memcheck sets for every PHP process (the allocator,
        // the extra php.ini folder), when set: the master reads them at
        // startup, its workers inherit the result through fork.
        foreach (['USE_ZEND_ALLOC', 'PHP_INI_SCAN_DIR'] as $k) {
            if (getenv($k) !== false) {
                $env += [$k => (string) getenv($k)];
            }
        }
        $fpm->proc = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$fpm->dir/stdout.log", 'w'], 2 => ['file', "$fpm->dir/stderr.log", 'w']], $pipes, $fpm->dir, $env);
        $deadline = microtime(true) + 15;
        $waiting = $fpm->ports;
        while (microtime(true) < $deadline) {
            foreach ($waiting as $name => $port) {
                $sock = @fsockopen('127.0.0.1', $port, $errno, $errstr, 0.2);
                if ($sock) {
                    fclose($sock);
                    unset($waiting[$name]);
                }
            }
            if ($waiting === []) {
                return $fpm;
            }
            usleep(50_000);
        }
        $log = @file_get_contents("$fpm->dir/fpm.log") . @file_get_contents("$fpm->dir/stderr.log");
        $fpm->stop();
        throw new \RuntimeException("php-fpm did not start: $log");
    }

    /** A master's environment: AWS settings and nothing the SDK could fall back on. */
    public static function masterEnv(): array
    {
        $env = ['PATH' => '/usr/sbin:/usr/bin:/sbin:/bin', 'HOME' => '/nonexistent'];
        foreach (['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'AWS_ENDPOINT_URL', 'AWS_EC2_METADATA_DISABLED'] as $k) {
            $env[$k] = (string) getenv($k);
        }
        return $env;
    }

    public static function binary(): string
    {
        // The php-fpm of the PHP running the tests: Debian names it by version.
        $version = PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION;
        foreach (["/usr/sbin/php-fpm$version", '/usr/sbin/php-fpm'] as $bin) {
            if (is_executable($bin)) {
                return $bin;
            }
        }
        throw new \RuntimeException("php-fpm is not installed (apt install php$version-fpm)");
    }

    public static function freePort(): int
    {
        $sock = stream_socket_server('tcp://127.0.0.1:0');
        $name = stream_socket_get_name($sock, false);
        fclose($sock);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    /** Writes a script into the pool's folder, readable by the workers. */
    public function script(string $name, string $code): string
    {
        $path = "$this->dir/$name";
        file_put_contents($path, $code);
        chmod($path, 0644);
        return $path;
    }

    /** One FastCGI request; returns the body. */
    public function request(string $script, int $timeout = 10, ?string $pool = null): string
    {
        return $this->requests($script, 1, $timeout, $pool)[0];
    }

    /**
     * `$count` FastCGI requests sent at the same time; returns their bodies.
     * A request that fails or outlives `$timeout` seconds throws.
     *
     * @return list<string>
     */
    public function requests(string $script, int $count, int $timeout = 10, ?string $pool = null, array $params = []): array
    {
        $port = $pool === null ? $this->port : $this->ports[$pool];
        // cgi-fcgi sends its environment as the FastCGI parameters.
        $env = $params + ['SCRIPT_FILENAME' => $script, 'REQUEST_METHOD' => 'GET', 'QUERY_STRING' => '', 'PATH' => '/usr/bin:/bin'];
        $procs = [];
        for ($i = 0; $i < $count; $i++) {
            $procs[] = proc_open(
                ['timeout', (string) $timeout, 'cgi-fcgi', '-bind', '-connect', "127.0.0.1:$port"],
                [1 => ['pipe', 'w'], 2 => ['file', '/dev/null', 'w']],
                $pipes,
                null,
                $env
            );
            $outs[] = $pipes[1];
        }
        $bodies = [];
        foreach ($procs as $i => $proc) {
            $out = (string) stream_get_contents($outs[$i]);
            fclose($outs[$i]);
            $exit = proc_close($proc);
            if ($exit !== 0) {
                throw new \RuntimeException("FastCGI request failed or timed out (exit $exit)");
            }
            $bodies[] = preg_split("/\r?\n\r?\n/", $out, 2)[1] ?? '';
        }
        return $bodies;
    }

    public function masterPid(): int
    {
        return (int) @file_get_contents("$this->dir/fpm.pid");
    }

    public function logs(): string
    {
        $all = '';
        foreach (glob("$this->dir/*.log") ?: [] as $log) {
            $all .= (string) file_get_contents($log);
        }
        return $all;
    }

    public function stop(): void
    {
        if (is_resource($this->proc)) {
            $status = proc_get_status($this->proc);
            if ($status['running']) {
                posix_kill($status['pid'], SIGTERM);
                $deadline = microtime(true) + 5;
                while (microtime(true) < $deadline && proc_get_status($this->proc)['running']) {
                    usleep(50_000);
                }
                if (proc_get_status($this->proc)['running']) {
                    posix_kill($status['pid'], SIGKILL);
                }
            }
            proc_close($this->proc);
        }
    }
}
