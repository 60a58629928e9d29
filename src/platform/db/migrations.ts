// Every migration, by name (its file's name), in the order they apply. Listed rather than read from the folder at
// run time so that the app can be bundled (the test suite runs bundled); test/migrations.test.ts checks that
// this list names exactly the files of migrations/. A new migration is a new file there and a new line here.
import type { Migration } from 'kysely'
import * as m0001 from '../../../migrations/0001_platform.ts'
import * as m0002 from '../../../migrations/0002_events.ts'
import * as m0003 from '../../../migrations/0003_shortages.ts'
import * as m0004 from '../../../migrations/0004_eprescription.ts'
import * as m0005 from '../../../migrations/0005_serialization.ts'
import * as m0006 from '../../../migrations/0006_serialization_alerts.ts'
import * as m0007 from '../../../migrations/0007_dispensation_blocks.ts'
import * as m0008 from '../../../migrations/0008_recalls.ts'
import * as m0009 from '../../../migrations/0009_emergency.ts'
import * as m0010 from '../../../migrations/0010_stock.ts'
import * as m0011 from '../../../migrations/0011_availability.ts'
import * as m0012 from '../../../migrations/0012_recall_discard.ts'
import * as m0013 from '../../../migrations/0013_audit_chains.ts'
import * as m0014 from '../../../migrations/0014_dispensation_rule_and_pseudonyms.ts'
import * as m0016a from '../../../migrations/0016a_referential_generics_composition.ts'
import * as m0016b from '../../../migrations/0016b_eprescription_rules.ts'
import * as m0017 from '../../../migrations/0017_emergency_service_hours.ts'
import * as m0018 from '../../../migrations/0018_recall_review_rounds.ts'
import * as m0018a from '../../../migrations/0018a_paper_letters.ts'
import * as m0018b from '../../../migrations/0018b_ack_sources.ts'
import * as m0019 from '../../../migrations/0019_audit_chain_head.ts'

export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001_platform': m0001,
  '0002_events': m0002,
  '0003_shortages': m0003,
  '0004_eprescription': m0004,
  '0005_serialization': m0005,
  '0006_serialization_alerts': m0006,
  '0007_dispensation_blocks': m0007,
  '0008_recalls': m0008,
  '0009_emergency': m0009,
  '0010_stock': m0010,
  '0011_availability': m0011,
  '0012_recall_discard': m0012,
  '0013_audit_chains': m0013,
  '0014_dispensation_rule_and_pseudonyms': m0014,
  '0016a_referential_generics_composition': m0016a,
  '0016b_eprescription_rules': m0016b,
  '0017_emergency_service_hours': m0017,
  '0018_recall_review_rounds': m0018,
  '0018a_paper_letters': m0018a,
  '0018b_ack_sources': m0018b,
  '0019_audit_chain_head': m0019,
}
