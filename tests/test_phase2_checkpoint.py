"""Phase 2 checkpoints: the optimizer's state as safetensors comes back exactly (training
continues as if never stopped), and checkpoints of earlier versions (optimizer.pt) still load."""

from __future__ import annotations

import math

import torch

from cognitivetwin_core.phase2.checkpoint import (
    CheckpointWriter,
    find_checkpoint,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)


def _training(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.99), weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda update: 1.0 / (1 + update))
    return model, optimizer, scheduler


def _step(model, optimizer, scheduler):
    loss = model(torch.randn(5, 4)).pow(2).mean()
    loss.backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def _resumed(folder):
    model, optimizer, scheduler = _training(seed=1)  # other weights: all must come from the file
    checkpoint = load_checkpoint(folder)
    model.load_state_dict(checkpoint.components_state)
    optimizer.load_state_dict(checkpoint.optimizer_state)
    scheduler.load_state_dict(checkpoint.scheduler_state)
    restore_rng(checkpoint.rng_state)
    return model, optimizer, scheduler, checkpoint


def test_a_resumed_optimizer_continues_exactly(tmp_path):
    model, optimizer, scheduler = _training()
    for _ in range(3):
        _step(model, optimizer, scheduler)
    folder = save_checkpoint(tmp_path, model, optimizer, scheduler, {"epoch": 1, "history": [{"epoch": 1}]})
    assert sorted(p.name for p in folder.iterdir()) == [
        "components.safetensors",
        "optimizer.safetensors",
        "trainer_state.json",
    ]
    other, other_optimizer, other_scheduler, checkpoint = _resumed(folder)
    assert checkpoint.trainer_state == {"epoch": 1, "history": [{"epoch": 1}]}
    assert other_optimizer.param_groups[0]["betas"] == (0.8, 0.99)
    assert set(other_optimizer.state_dict()["state"]) == {0, 1, 2, 3}
    assert other_scheduler.last_epoch == scheduler.last_epoch == 3
    _step(other, other_optimizer, other_scheduler)  # the same random batch: the RNG came back too
    torch.set_rng_state(checkpoint.rng_state["torch"])
    _step(model, optimizer, scheduler)
    for mine, theirs in zip(model.parameters(), other.parameters()):
        assert torch.equal(mine, theirs)
    assert math.isclose(other_optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["lr"])


def test_a_checkpoint_of_an_earlier_version_still_loads(tmp_path):
    model, optimizer, scheduler = _training()
    _step(model, optimizer, scheduler)
    folder = save_checkpoint(tmp_path, model, optimizer, scheduler, {"epoch": 1})
    (folder / "optimizer.safetensors").unlink()
    assert find_checkpoint(tmp_path) is None  # no optimizer state: not resumable
    torch.save(  # the layout written before optimizer.safetensors
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
        },
        folder / "optimizer.pt",
    )
    assert find_checkpoint(tmp_path) == folder
    _, resumed, _, _ = _resumed(folder)
    assert torch.equal(resumed.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_the_writer_writes_a_snapshot_while_training_goes_on_and_reports_its_error(tmp_path, monkeypatch):
    from cognitivetwin_core.phase2 import checkpoint as module

    model, optimizer, scheduler = _training()
    _step(model, optimizer, scheduler)
    taken = module.snapshot(model, optimizer, scheduler, {"epoch": 1, "history": [1]})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _step(model, optimizer, scheduler)  # the live weights move on; the snapshot does not
    writer = CheckpointWriter(tmp_path)
    writer.start(1, taken)
    epoch, folder = writer.collect(wait=True)
    assert epoch == 1 and writer.collect() is None
    saved = load_checkpoint(folder).components_state
    assert all(torch.equal(saved[k], before[k]) for k in before)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("safetensors.torch.save_file", full)
    writer.start(2, module.snapshot(model, optimizer, scheduler, {"epoch": 2}))
    try:
        writer.collect(wait=True)
        raise AssertionError("the write's error reaches the epoch loop")
    except OSError as exc:
        assert exc.errno == 28
    writer.close()
    assert load_checkpoint(find_checkpoint(tmp_path)).trainer_state["epoch"] == 1  # epoch 1's is kept
