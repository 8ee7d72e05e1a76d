-- The shop's schema: applied once by `python migrate.py` (idempotent).
CREATE TABLE IF NOT EXISTS category (
    id   serial PRIMARY KEY,
    name varchar(80) NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS item (
    id          serial PRIMARY KEY,
    category_id integer NOT NULL REFERENCES category(id),
    name        varchar(120) NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    stock       integer NOT NULL CHECK (stock >= 0)
);
CREATE INDEX IF NOT EXISTS item_category_idx ON item (category_id);
CREATE TABLE IF NOT EXISTS orders (
    id         serial PRIMARY KEY,
    item_id    integer NOT NULL REFERENCES item(id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_item_idx ON orders (item_id);
