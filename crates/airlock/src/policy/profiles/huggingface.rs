//! The Hugging Face training-state profile: what `training_args.bin`, Trainer checkpoints
//! (`rng_state.pth`, `trainer_state`), and tokenizer pickles import.
//!
//! Sources: the classes `transformers.Trainer` saves with `torch.save(self.args, ...)` —
//! `TrainingArguments` (a dataclass; `__setstate__` is the default) and the enums its fields
//! hold (`IntervalStrategy`, `SaveStrategy`, `SchedulerType`, `HubStrategy`, `OptimizerNames`,
//! `FSDPOption`, `EvaluationStrategy` from transformers < 4.46, `debug_utils.DebugOption` for
//! the `debug` field); `Seq2SeqTrainingArguments`;
//! the accelerate dataclass/enum a `TrainingArguments` carries (`AcceleratorConfig`,
//! `DistributedType`) and `accelerate.state.PartialState`, a process-state singleton: its
//! `__init__` can start `torch.distributed` from *keyword* arguments, which no opcode can pass
//! to it (REDUCE passes positionals only — here just `cpu` — and NEWOBJ_EX calls `__new__`
//! only); `tokenizers` Rust bindings, whose `__setstate__` parses a JSON description
//! (`Tokenizer`, `AddedToken`, and the model classes a pickled `Tokenizer` names through
//! `__getnewargs__`: `BPE`, `Unigram`, `WordLevel`, `WordPiece`; old releases let their
//! constructors read a vocabulary *file* by name — a local read, no code runs).
//! Classes only: no function of these packages is here. Enum members pickle as
//! `Class(value)`, which only looks a value up.

pub const ENTRIES: &[(&str, &str)] = &[
    ("accelerate.state", "PartialState"),
    ("accelerate.utils.dataclasses", "DistributedType"),
    ("tokenizers", "AddedToken"),
    ("tokenizers", "Tokenizer"),
    ("tokenizers.models", "BPE"),
    ("tokenizers.models", "Model"),
    ("tokenizers.models", "Unigram"),
    ("tokenizers.models", "WordLevel"),
    ("tokenizers.models", "WordPiece"),
    ("transformers.debug_utils", "DebugOption"),
    ("transformers.trainer_pt_utils", "AcceleratorConfig"),
    ("transformers.trainer_utils", "EvaluationStrategy"),
    ("transformers.trainer_utils", "FSDPOption"),
    ("transformers.trainer_utils", "HubStrategy"),
    ("transformers.trainer_utils", "IntervalStrategy"),
    ("transformers.trainer_utils", "SaveStrategy"),
    ("transformers.trainer_utils", "SchedulerType"),
    ("transformers.training_args", "OptimizerNames"),
    ("transformers.training_args", "TrainingArguments"),
    (
        "transformers.training_args_seq2seq",
        "Seq2SeqTrainingArguments",
    ),
];
