"""A trained model end to end: a small CenterPoint-style car detector on synthetic lidar, trained on a CPU.

Modules (see ``docs/demo.md`` for the whole road, with commands and figures):
    model     -- the detector (spconv-compatible sparse layers + a 2D BEV backbone + a center head),
                 its config, checkpoints, and ``export_recipe`` for ``sparsetrt export``
    scenes    -- frames from ``sparsetrt.data`` voxelized on the detector's grid, with ground truth
    targets   -- heatmap and box regression targets, focal + L1 losses
    decode    -- head outputs (PyTorch's or an exported file's) -> boxes
    evaluate  -- BEV average precision for cars on held-out frames (``python -m sparsetrt.demo.evaluate``)
    train     -- the training script (``python -m sparsetrt.demo.train --out ckpt.pt``)
    pictures  -- the BEV detection picture and the seed paper's Figure 1 (``python -m sparsetrt.demo.pictures``)
"""
