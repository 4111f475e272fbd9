<?php

// Prints this process's RSS and private memory (kB), after an optional first fetch.
// Usage: php [-d extension=...] memory.php [fetch]
$fetch = ($argv[1] ?? '') === 'fetch';
if ($fetch) {
    ssm_db_config();
}
$rollup = file_get_contents('/proc/self/smaps_rollup');
preg_match_all('/^(Rss|Private_Clean|Private_Dirty):\s+(\d+) kB/m', $rollup, $m, PREG_SET_ORDER);
$v = [];
foreach ($m as [, $k, $n]) {
    $v[$k] = (int) $n;
}
echo json_encode(['rss' => $v['Rss'], 'private' => $v['Private_Clean'] + $v['Private_Dirty'], 'private_dirty' => $v['Private_Dirty']]), "\n";
