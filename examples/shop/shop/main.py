"""The shop's HTTP API: FastAPI + SQLAlchemy 2 (async, asyncpg), reading ``DATABASE_URL``.

``uvicorn shop.main:app`` from this folder (examples/shop). No /health: dbbench decides readiness by any answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shop.db import make_engine, make_sessions
from shop.models import Category, Item, Order


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = make_engine()
    app.state.sessions = make_sessions(engine)
    yield
    await engine.dispose()


app = FastAPI(title="shop", lifespan=lifespan)


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as s:
        yield s


Session = Annotated[AsyncSession, Depends(session)]


class ItemOut(BaseModel):
    id: int
    name: str
    category: str
    price_cents: int
    stock: int


class OrderIn(BaseModel):
    item_id: int
    quantity: int = Field(gt=0, le=100)


class OrderOut(BaseModel):
    id: int
    item_id: int
    quantity: int
    stock_left: int


@app.get("/")
async def index() -> dict[str, str]:
    return {"service": "shop"}


@app.get("/items/{item_id}")
async def get_item(item_id: int, db: Session) -> ItemOut:
    row = (await db.execute(select(Item, Category.name).join(Category).where(Item.id == item_id))).one_or_none()
    if row is None:
        raise HTTPException(404, f"no item {item_id}")
    item, category = row
    return ItemOut(id=item.id, name=item.name, category=category, price_cents=item.price_cents, stock=item.stock)


@app.get("/categories/{category_id}/items")
async def list_items(category_id: int, db: Session, limit: int = 20) -> list[ItemOut]:
    rows = await db.execute(
        select(Item, Category.name)
        .join(Category)
        .where(Item.category_id == category_id)
        .order_by(Item.price_cents, Item.id)
        .limit(max(1, min(limit, 100)))
    )
    return [ItemOut(id=i.id, name=i.name, category=c, price_cents=i.price_cents, stock=i.stock) for i, c in rows.all()]


@app.post("/orders", status_code=201)
async def place_order(order: OrderIn, db: Session) -> OrderOut:
    async with db.begin():
        stock = (
            await db.execute(
                update(Item)
                .where(Item.id == order.item_id, Item.stock >= order.quantity)
                .values(stock=Item.stock - order.quantity)
                .returning(Item.stock)
            )
        ).scalar_one_or_none()
        if stock is None:
            raise HTTPException(409, f"item {order.item_id} does not exist or is out of stock")
        placed = Order(item_id=order.item_id, quantity=order.quantity)
        db.add(placed)
        await db.flush()
        return OrderOut(id=placed.id, item_id=order.item_id, quantity=order.quantity, stock_left=stock)


@app.get("/stats")
async def stats(db: Session) -> dict[str, int]:
    orders = (await db.execute(select(func.count(Order.id)))).scalar_one()
    return {"orders": orders}
