import test from 'ava';
import { redactText } from '../reports/redact.ts';

test('host names and non-loopback addresses are replaced; loopback, versions and times stay', (t) => {
  const text = 'host db-7.prod.example | 10.1.2.3:5432 | 192.168.0.9 | fe80::1c2:3ff:fe4d:5e6f | 127.0.0.1:8080 | ::1 | kernel 6.18.44 | 1.20s';
  const r = redactText(text, ['db-7.prod.example', 'db-7']);
  t.is(r, 'host (host) | (address):5432 | (address) | (address) | 127.0.0.1:8080 | ::1 | kernel 6.18.44 | 1.20s');
});

test('a short host name is replaced as a whole word only', (t) => {
  t.is(redactText('vm | vmstat.pgfault | host vm. | dvm', ['vm']), '(host) | vmstat.pgfault | host (host). | dvm');
});
