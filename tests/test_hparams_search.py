"""`hparams_search=sdw-local`: an Optuna search through `sdw-run`, its best value read back."""

from __future__ import annotations

import json

import yaml

from run_cli import TINY, cache_dir, data_file, sdw_run  # noqa: F401 (fixtures)


def test_an_optuna_search_runs_its_trials_and_reports_the_best(data_file, cache_dir, tmp_path):
    search = sdw_run(["hparams_search=sdw-local", f"dataset.path={data_file}", "outer_steps=2",
                      *TINY, "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=1",
                      "hydra/launcher=basic"], tmp_path, cache_dir)
    assert search.returncode == 0, search.stdout
    study = tmp_path / "sweeps" / "hparams-sdw-local"
    trials = {job: (json.loads((job / "eval.json").read_text())["last_k"]["normalised_mean"],
                    json.loads((job / "status.json").read_text())["config"])
              for job in study.iterdir() if (job / "eval.json").exists()}
    assert len(trials) == 3
    result = yaml.safe_load((study / "optimization_results.yaml").read_text())
    best, winner = max(trials.values(), key=lambda trial: trial[0])
    assert result["best_value"] == best
    assert set(result["best_params"]) == {"weighting.target_ess", "density.k", "outer_optim.lr",
                                          "outer_optim.action_lr"}
    assert {key: winner[key] for key in result["best_params"]} == result["best_params"]
    assert 0.1 <= winner["weighting.target_ess"] <= 0.9 and winner["density.k"] in (5, 10, 20, 40)
