-- Usernames and e-mails are one namespace of logins, compared ignoring case, because a login
-- names a user by either, in any case: no username or e-mail may equal another user's username
-- or e-mail, ignoring case.
--
-- A database from before this rule may hold clashes: the newer account of each keeps working
-- under a changed name (its username gets `-<id>` appended; a clashing e-mail gets `<id>.` put
-- before it), so every login names exactly one user.
UPDATE users SET username = username || '-' || id
 WHERE EXISTS (SELECT 1 FROM users older WHERE older.id < users.id
                 AND (LOWER(older.username) = LOWER(users.username)
                      OR LOWER(older.email) = LOWER(users.username)));
UPDATE users SET email = id || '.' || email
 WHERE EXISTS (SELECT 1 FROM users older WHERE older.id < users.id
                 AND (LOWER(older.email) = LOWER(users.email)
                      OR LOWER(older.username) = LOWER(users.email)));

CREATE UNIQUE INDEX users_username_lower ON users (LOWER(username));
CREATE UNIQUE INDEX users_email_lower ON users (LOWER(email));

-- A username may not be another user's e-mail, nor an e-mail another user's username. The
-- advisory lock serialises the check with concurrent changes of other users.
CREATE FUNCTION users_login_unique() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('ralf users login'));
    IF EXISTS (SELECT 1 FROM users
                WHERE id IS DISTINCT FROM NEW.id
                  AND (LOWER(username) = LOWER(NEW.email) OR LOWER(email) = LOWER(NEW.username)))
    THEN
        RAISE EXCEPTION 'a user with that username or e-mail exists already'
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_login_unique BEFORE INSERT OR UPDATE OF username, email ON users
FOR EACH ROW EXECUTE FUNCTION users_login_unique();
