"""Rows decoded together by the Decoder: one left-padded KV cache for requests of different lengths, and the
per-row adapter names handed to peft's LoRA layers during each forward pass."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from backends.decoder import DecodeRequest

BASE = "__base__"  # peft's row name for "no adapter" in a mixed batch


class AdapterRouter:
    """Persistent forward pre-hooks on every LoRA layer that pass the running forward's per-row adapter names."""

    def __init__(self) -> None:
        self.names: list[str] | None = None  # set only around a forward pass of the decoder thread
        self.adapters: frozenset[str] = frozenset()
        self._hooks: dict[torch.nn.Module, Any] = {}

    def scan(self, model: torch.nn.Module) -> None:
        """Hook LoRA layers not hooked yet (and unhook vanished ones); note which adapters exist."""
        from peft.tuners.lora import LoraLayer
        from peft.utils.other import AuxiliaryTrainingWrapper

        found = [m for m in model.modules() if isinstance(m, LoraLayer | AuxiliaryTrainingWrapper)]
        for gone in set(self._hooks) - set(found):
            self._hooks.pop(gone).remove()
        adapters: set[str] = set()
        for layer in found:
            if layer not in self._hooks:
                self._hooks[layer] = layer.register_forward_pre_hook(self._inject, with_kwargs=True)
            if isinstance(layer, LoraLayer):
                # adapter_names needs every adapter live and unmerged; the rows choose, not the layer's state
                if layer.merged:
                    layer.unmerge()
                if layer.disable_adapters:
                    layer.enable_adapters(True)
                adapters |= set(layer.lora_A) | set(layer.lora_embedding_A)
        self.adapters = frozenset(adapters)

    def close(self) -> None:
        """Remove every hook."""
        for handle in self._hooks.values():
            handle.remove()
        self._hooks.clear()

    def _inject(self, _module: Any, args: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
        if self.names is None:
            return None
        kwargs["adapter_names"] = self.names
        return args, kwargs


class Batch:
    """Rows decoded together: one left-padded cache, a mask of real positions, and each row's true length."""

    def __init__(self, req: DecodeRequest, cache: Any, length: int) -> None:
        self.rows = [req]
        self.cache = cache
        self.mask = torch.ones(1, length, dtype=torch.long)
        self.lengths = torch.tensor([length], dtype=torch.long)

    def add(self, req: DecodeRequest, cache: Any, length: int) -> None:
        """Append a prefilled row, left-padding whichever side is shorter."""
        width = max(self.mask.shape[1], length)
        for mine, theirs in zip(self.cache.layers, cache.layers, strict=True):
            mine.keys = torch.cat([_left_pad(mine.keys, width), _left_pad(theirs.keys, width)])
            mine.values = torch.cat([_left_pad(mine.values, width), _left_pad(theirs.values, width)])
        row_mask = torch.ones(1, length, dtype=torch.long)
        self.mask = torch.cat([_left_pad(self.mask, width), _left_pad(row_mask, width)])
        self.lengths = torch.cat([self.lengths, torch.tensor([length], dtype=torch.long)])
        self.rows.append(req)

    def inputs(self) -> dict[str, Any]:
        """The next decode step's model inputs: each row's last token at its own position."""
        ids = torch.tensor([[req._generated[-1]] for req in self.rows], dtype=torch.long)
        mask = torch.cat([self.mask, torch.ones(len(self.rows), 1, dtype=torch.long)], dim=1)
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "position_ids": self.lengths.unsqueeze(1),
            "past_key_values": self.cache,
        }

    def advance(self, mask: torch.Tensor) -> None:
        """Record a completed step (the cache grew by one column, given as `mask`)."""
        self.mask = mask
        self.lengths = self.lengths + 1

    def keep(self, indices: list[int]) -> None:
        """Keep only the rows at `indices`, then drop leading columns that are padding in every kept row."""
        self.rows = [self.rows[i] for i in indices]
        if not indices:
            return
        index = torch.tensor(indices, dtype=torch.long)
        self.mask, self.lengths = self.mask[index], self.lengths[index]
        start = int(self.mask.any(dim=0).int().argmax())
        for layer in self.cache.layers:
            layer.batch_select_indices(index)
            if start:
                layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]
        if start:
            self.mask = self.mask[:, start:]


def _left_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """Pad the sequence axis (dim -2 of a 4-D cache tensor, dim -1 of a 2-D mask) on the left to `width`."""
    missing = width - (t.shape[-1] if t.dim() == 2 else t.shape[-2])
    if not missing:
        return t
    return F.pad(t, (missing, 0)) if t.dim() == 2 else F.pad(t, (0, 0, missing, 0))
