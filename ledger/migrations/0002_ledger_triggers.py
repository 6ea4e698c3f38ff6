"""The database itself keeps the ledger honest (STYLE §2, after django-hordak's 0052 migration):
- a deferred constraint trigger refuses, at commit, a transaction whose entries do not balance or mix
  currencies, and a transaction header with fewer than two entries;
- entries and transaction headers are append-only: UPDATE and DELETE raise.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION ledger_check_transaction_balanced() RETURNS trigger AS $$
DECLARE
    txn_id bigint;
    net numeric;
    legs integer;
    currencies integer;
BEGIN
    IF TG_TABLE_NAME = 'ledger_entry' THEN txn_id := NEW.transaction_id; ELSE txn_id := NEW.id; END IF;
    SELECT COALESCE(SUM(CASE WHEN direction = 'debit' THEN amount ELSE -amount END), 0),
           COUNT(*), COUNT(DISTINCT currency)
      INTO net, legs, currencies
      FROM ledger_entry WHERE transaction_id = txn_id;
    IF legs < 2 THEN
        RAISE EXCEPTION 'ledger: transaction % has % entries; at least two are required', txn_id, legs
            USING ERRCODE = 'check_violation';
    END IF;
    IF net <> 0 THEN
        RAISE EXCEPTION 'ledger: transaction % is unbalanced (debits - credits = %)', txn_id, net
            USING ERRCODE = 'check_violation';
    END IF;
    IF currencies <> 1 THEN
        RAISE EXCEPTION 'ledger: transaction % mixes currencies', txn_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER ledger_entry_balanced
    AFTER INSERT ON ledger_entry DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_transaction_balanced();

CREATE CONSTRAINT TRIGGER ledger_transaction_has_entries
    AFTER INSERT ON ledger_balancetransaction DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_transaction_balanced();

CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % is append-only (% refused); post a reversal instead', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transaction_append_only BEFORE UPDATE OR DELETE ON ledger_balancetransaction
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS ledger_transaction_append_only ON ledger_balancetransaction;
DROP TRIGGER IF EXISTS ledger_entry_append_only ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_refuse_change();
DROP TRIGGER IF EXISTS ledger_transaction_has_entries ON ledger_balancetransaction;
DROP TRIGGER IF EXISTS ledger_entry_balanced ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_check_transaction_balanced();
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
