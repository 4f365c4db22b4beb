-- Wake the outbox relay as soon as an event is written, instead of at its next poll.
-- One NOTIFY per statement (not per row), and PostgreSQL folds identical notifications
-- of one transaction into one, delivered only at commit: a rolled-back change wakes
-- nobody. The payload is empty: the relay reads the table, so a lost notification
-- costs at most one poll interval.

CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orders_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify
    AFTER INSERT ON outbox
    FOR EACH STATEMENT
    EXECUTE FUNCTION outbox_notify();
