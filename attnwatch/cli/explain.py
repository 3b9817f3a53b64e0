"""``attnwatch explain-eval``: how faithful a saved model's logged attention is (ERASER)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attnwatch.cli.app import app, fail, state
from attnwatch.cli.model import FORMAT_HELP, examples_from
from pipeline.errors import AttnwatchError


@app.command("explain-eval")
def explain_eval(
    model: Annotated[Path, typer.Argument(help="Saved model directory.")],
    data: Annotated[Path | None, typer.Option(help="Texts to explain; default: seed data.")] = None,
    data_format: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "csv",
    task: Annotated[str, typer.Option(help="Task whose explanations are scored.")] = "sentiment",
    limit: Annotated[int, typer.Option(min=1, help="Examples scored.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the random baseline.")] = 0,
    card: Annotated[bool, typer.Option(help="Add the table to the model card.")] = True,
    articles: Annotated[
        bool,
        typer.Option(
            "--articles",
            help="Score long news instead: article-level attention through the sentence path, "
            "top words removed across the article; --data is then JSON Lines with headline "
            "and body (default: the seed news with a body).",
        ),
    ] = False,
) -> None:
    """ERASER comprehensiveness/sufficiency of attention vs. random and gradient x input.

    With ``--articles``: of long news's article-level attention vs. random words and each
    sentence's share spread evenly over its words, classified as the run loop does it.
    """
    from models.classifier import resolve_device
    from models.explain.faithfulness import explain_eval as run_eval
    from models.explain.faithfulness import render_markdown

    if articles:
        _explain_articles(model, data, task, limit, seed, card)
        return
    if data is None:
        from models.data import seed as seed_data

        texts = [c.text for c in seed_data.load_chat()] + [
            n.headline for n in seed_data.load_news()
        ]
    else:
        texts = [e.text for e in examples_from(data, data_format, "test") if task in e.labels]
    try:
        device = str(resolve_device(state.settings.model.device))
        results = run_eval(model, texts, task, seed=seed, limit=limit, device=device)
    except ValueError as exc:
        fail(exc)
    table = render_markdown(results, task)
    typer.echo(table)
    if card:
        _update_card(model / "README.md", f"Explanation faithfulness: {task}", table)


def _explain_articles(
    model: Path, data: Path | None, task: str, limit: int, seed: int, card: bool
) -> None:
    """``explain-eval --articles``: the served classifier (``model_runtime``) on long news."""
    from attnwatch.service import load_classifier
    from models.explain.article import (
        article_faithfulness,
        load_articles,
        render_article_markdown,
        seed_articles,
    )

    settings = state.settings
    try:
        found = seed_articles() if data is None else load_articles(data)
        classifier = load_classifier(settings, model)
        report = article_faithfulness(
            classifier,
            found[:limit],
            task,
            seed=seed,
            max_sentences=settings.stream.max_sentences,
            progress=True,
        )
    except (OSError, ValueError, AttnwatchError) as exc:
        fail(exc)
    table = render_article_markdown(report)
    typer.echo(table)
    if card:
        _update_card(model / "README.md", f"Explanation faithfulness: {task}/articles", table)


def _update_card(path: Path, title: str, body: str) -> None:
    """Replace (or append) one ``## title`` section of a model card."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    heading = f"## {title}"
    # Headings inside the body become sub-headings, so the section stays one "## " block.
    nested = "\n".join("#" + line if line.startswith("#") else line for line in body.splitlines())
    section = f"{heading}\n\n{nested.strip()}\n"
    if heading in text:
        before, _, rest = text.partition(heading)
        after = rest.split("\n## ", 1)
        text = before + section + ("\n## " + after[1] if len(after) > 1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text, encoding="utf-8")
