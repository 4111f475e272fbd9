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
    /** @var resource */
    private $proc;

    /**
     * @param array<string, string> $ini  -d directives for the master
     * @param array<string, string> $env  the master's environment (workers get it cleared)
     * @param string $pool  more lines for the pool's section (e.g. `pm.max_requests = 5`)
     */
    public static function start(array $ini, array $env, int $workers = 4, string $pool = ''): self
    {
        $fpm = new self();
        $fpm->dir = sys_get_temp_dir() . '/ssm-fpm-' . bin2hex(random_bytes(4));
        mkdir($fpm->dir, 0777);
        chmod($fpm->dir, 0777);
        $fpm->port = self::freePort();
        file_put_contents("$fpm->dir/fpm.conf", <<<CONF
        [global]
        error_log = $fpm->dir/fpm.log
        daemonize = no
        pid = $fpm->dir/fpm.pid
        [pool]
        listen = 127.0.0.1:$fpm->port
        pm = static
        pm.max_children = $workers
        catch_workers_output = yes
        $pool
        ; clear_env stays at its default, yes: workers get an empty environment.
        CONF);
        $cmd = [];
        if (posix_geteuid() === 0) {
            array_push($cmd, 'setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups');
        }
        array_push($cmd, self::binary(), '-F', '-y', "$fpm->dir/fpm.conf", '-p', $fpm->dir);
        array_push($cmd, ...PhpProcess::extensionArgs());
        array_push($cmd, '-d', 'error_log=' . "$fpm->dir/php.log");
        foreach ($ini as $k => $v) {
            array_push($cmd, '-d', "$k=$v");
        }
        $fpm->proc = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$fpm->dir/stdout.log", 'w'], 2 => ['file', "$fpm->dir/stderr.log", 'w']], $pipes, $fpm->dir, $env);
        $deadline = microtime(true) + 15;
        while (microtime(true) < $deadline) {
            $sock = @fsockopen('127.0.0.1', $fpm->port, $errno, $errstr, 0.2);
            if ($sock) {
                fclose($sock);
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
        foreach (['/usr/sbin/php-fpm8.2', '/usr/sbin/php-fpm'] as $bin) {
            if (is_executable($bin)) {
                return $bin;
            }
        }
        throw new \RuntimeException('php-fpm is not installed (apt install php8.2-fpm)');
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
    public function request(string $script, int $timeout = 10): string
    {
        return $this->requests($script, 1, $timeout)[0];
    }

    /**
     * `$count` FastCGI requests sent at the same time; returns their bodies.
     * A request that fails or outlives `$timeout` seconds throws.
     *
     * @return list<string>
     */
    public function requests(string $script, int $count, int $timeout = 10): array
    {
        $env = ['SCRIPT_FILENAME' => $script, 'REQUEST_METHOD' => 'GET', 'QUERY_STRING' => '', 'PATH' => '/usr/bin:/bin'];
        $procs = [];
        for ($i = 0; $i < $count; $i++) {
            $procs[] = proc_open(['timeout', (string) $timeout, 'cgi-fcgi', '-bind', '-connect', "127.0.0.1:$this->port"],
                [1 => ['pipe', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes, null, $env);
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
