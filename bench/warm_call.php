<?php

// ns per call for ssm_db_config()'s warm path against baselines measured in
// the same process and run. Each figure is the best of several rounds, minus
// the cost of the empty loop. Run through bench/run.
declare(strict_types=1);

const N = 2_000_000;
const ROUNDS = 7;

function literal_array(): array
{
    return [
        'DB_HOST' => 'db.internal:5432', 'DB_PORT' => 5432, 'DB_USER' => 'wp',
        'DB_PASSWORD' => 'x', 'DB_NAME' => 'wp', 'DB_ENGINE' => 'postgresql',
    ];
}

/** @return float ns per iteration, best of ROUNDS */
function measure(callable $body): float
{
    $best = INF;
    for ($r = 0; $r < ROUNDS; $r++) {
        $t = hrtime(true);
        $body();
        $best = min($best, (hrtime(true) - $t) / N);
    }
    return $best;
}

ssm_db_config(); // warm up: the first call fetches
$empty = '';
$results = [
    'empty loop' => measure(function () {
        for ($i = 0; $i < N; $i++) {
        }
    }),
    'ssm_db_config() warm' => measure(function () {
        for ($i = 0; $i < N; $i++) {
            $c = ssm_db_config();
        }
    }),
    "strlen('') (compiled to an opcode)" => measure(function () use ($empty) {
        for ($i = 0; $i < N; $i++) {
            $c = strlen($empty);
        }
    }),
    'pi() (empty internal function call)' => measure(function () {
        for ($i = 0; $i < N; $i++) {
            $c = pi();
        }
    }),
    'five getenv() calls' => measure(function () {
        for ($i = 0; $i < N; $i++) {
            $a = getenv('DB_HOST');
            $b = getenv('DB_USER');
            $c = getenv('DB_PASSWORD');
            $d = getenv('DB_NAME');
            $e = getenv('DB_PORT');
        }
    }),
    'userland function returning a literal array' => measure(function () {
        for ($i = 0; $i < N; $i++) {
            $c = literal_array();
        }
    }),
];
$loop = $results['empty loop'];
printf("%-46s %10s\n", 'per call (empty loop subtracted)', 'ns');
foreach ($results as $name => $ns) {
    if ($name !== 'empty loop') {
        printf("%-46s %10.1f\n", $name, $ns - $loop);
    }
}
$warm = $results['ssm_db_config() warm'] - $loop;
printf("%-46s %10.2f  (target < 0.70)\n", 'ratio warm / five getenv()', $warm / ($results['five getenv() calls'] - $loop));
printf("%-46s %10.2f\n", 'ratio warm / pi()', $warm / ($results['pi() (empty internal function call)'] - $loop));
printf("%-46s %10.2f\n", 'ratio warm / userland literal array', $warm / ($results['userland function returning a literal array'] - $loop));
printf("%-46s %10s  (target <= 100 ns)\n", 'warm call within target', $warm <= 100 ? 'yes' : 'NO');
