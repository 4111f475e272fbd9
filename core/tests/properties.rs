//! The fuzz targets' three properties, run over a seeded generator so that
//! `cargo test` checks them without cargo-fuzz: rendered parts parse back
//! to exactly those parts, no text makes a parser panic, and a rewrite
//! changes the host and port and nothing else.

mod common;

use common::{check_parse, check_rewrite, check_roundtrip, HostPart, Parts};
use ssm_db_config_core::Engine;

/// xorshift64*: deterministic, and enough to spread cases over the palette.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// A string drawn from the characters that matter to the grammar.
    fn text(&mut self, max: usize) -> String {
        const PALETTE: [char; 40] = [
            'a', 'Z', '0', '9', '-', '.', '_', '~', ' ', '@', ':', '/', '?', '#', '%', '+', '&',
            '=', '[', ']', '"', '\\', '\'', ',', ';', '!', '*', '$', 'ä', '€', '🔑', '\u{feff}',
            '\u{a0}', '\n', '\r', '\t', '\u{0}', '\u{7f}', '{', '}',
        ];
        (0..self.below(max + 1))
            .map(|_| PALETTE[self.below(PALETTE.len())])
            .collect()
    }

    fn host(&mut self) -> HostPart {
        match self.below(4) {
            0 => HostPart::V4([10, self.next() as u8, self.next() as u8, self.next() as u8]),
            1 => HostPart::V6(std::array::from_fn(|_| {
                if self.chance(3) {
                    0
                } else {
                    self.next() as u16
                }
            })),
            2 => HostPart::Name(format!(
                "db-{}.c9.eu-central-1.rds.amazonaws.com",
                self.below(100)
            )),
            _ => HostPart::Name(self.text(12)),
        }
        .sanitize()
    }

    fn parts(&mut self) -> Parts {
        let engine = if self.chance(2) {
            Engine::Mysql
        } else {
            Engine::Postgresql
        };
        Parts {
            engine,
            user: self.text(8),
            password: self.text(16),
            host: self.host(),
            port: if self.chance(3) {
                None
            } else {
                Some(self.next() as u16)
            },
            dbname: self.text(10),
            options: (0..self.below(4))
                .map(|_| (self.text(6), self.text(8)))
                .collect(),
            socket: if self.chance(5) {
                Some(format!("/run/{}", self.text(10)))
            } else {
                None
            },
            style: self.next() as u32,
        }
        .sanitize()
    }
}

/// Every example the grammar was written for, and the forms the README lists.
const SEEDS: &[&str] = &[
    r#"{"engine":"mysql","host":"blog-db.c9.eu-central-1.rds.amazonaws.com:3306","port":3306,"username":"wp","password":"pw","dbname":"wordpress"}"#,
    r#"{"engine":"mysql","host":"blog-db.c9.eu-central-1.rds.amazonaws.com","port":3306,"username":"wp","password":"pw","dbname":"wordpress"}"#,
    "mysql://wp:pw@localhost:/run/mysqld/mysqld.sock/wordpress",
    "mysql://wp:pw@localhost/wordpress?socket=/run/mysqld/mysqld.sock",
    "mysql://wp:pw@localhost/wordpress?unix_socket=/run/mysqld/mysqld.sock",
    "mysql://wp:pw@%2Frun%2Fmysqld%2Fmysqld.sock/wordpress",
    "postgresql://wp:pw@/shop?host=/var/run/postgresql",
    "postgresql://wp:pw@%2Fvar%2Frun%2Fpostgresql/shop",
    "postgresql://wp:pw@db.internal:5432/shop?application_name=wp@web-1&sslmode=require",
    "mysql://wp:pw@db.internal:3306/wordpress/",
    "mysql://u:p@ss/w?rd#x@h:3307/d",
    "postgresql://user%40corp:p%40ss%3A%2F%3F%23@[2001:db8::1]:5433/d?sslmode=verify-full",
    "\u{feff}postgres://u:p@h/d\r\n",
    r#"{"engine":"postgres","host":"::1","port":"5432","username":"u","password":"p@ss:/?#% '\"ä","dbname":"d","extra":{"host":"x"}}"#,
    r#"{"engine":"mysql","socket":"/run/mysqld/mysqld.sock","username":"wp","password":"pw","dbname":"wordpress"}"#,
    r#"{"engine":"postgres","host":"h","host":"i","username":"u","password":"p","dbname":"d"}"#,
];

#[test]
fn rendered_parts_parse_back_to_exactly_those_parts() {
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..4000 {
        check_roundtrip(&rng.parts());
    }
}

#[test]
fn rewritten_values_change_only_host_and_port() {
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..2000 {
        let parts = rng.parts();
        let (host, port) = (rng.host(), 1 + rng.below(65535) as u16);
        for value in [parts.url(), parts.json()] {
            check_rewrite(&value, &host, port, true);
        }
    }
    for seed in SEEDS {
        check_rewrite(seed, &HostPart::Name("n.internal".into()), 6543, false);
    }
}

#[test]
fn no_text_makes_the_parser_panic() {
    let mut rng = Rng(0x5eed_0003);
    let mut corpus: Vec<String> = SEEDS.iter().map(|s| s.to_string()).collect();
    for _ in 0..200 {
        let parts = rng.parts();
        corpus.push(parts.url());
        corpus.push(parts.json());
    }
    for value in &corpus {
        check_parse(value);
        // Mutations: a character inserted, replaced or removed, a cut.
        for _ in 0..20 {
            let mut chars: Vec<char> = value.chars().collect();
            let at = rng.below(chars.len() + 1);
            match rng.below(4) {
                0 => chars.insert(at, rng.text(1).chars().next().unwrap_or('@')),
                1 if at < chars.len() => chars[at] = rng.text(1).chars().next().unwrap_or(':'),
                2 if at < chars.len() => drop(chars.remove(at)),
                _ => chars.truncate(at),
            }
            check_parse(&chars.into_iter().collect::<String>());
        }
    }
}
