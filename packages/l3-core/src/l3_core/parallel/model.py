"""Build the Llama 3 model as Megatron-core ``GPTModel`` chunks from :class:`ModelArgs`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from l3_core.args import ModelArgs
from l3_core.parallel.rope import PositionRotary
from l3_core.parallel.spec import llama_block_spec


@dataclass(frozen=True)
class ModelOptions:
    """Per-run model settings that are not part of the architecture."""

    bf16: bool = False
    activation_checkpointing: bool = False
    init_std: float = 0.02
    # Megatron's own fused SwiGLU (exact) and fused cross-entropy (not exact: see the docs);
    # neither needs Transformer Engine.
    fused_swiglu: bool = False
    fused_cross_entropy: bool = False


def transformer_config(
    args: ModelArgs,
    *,
    tp: int = 1,
    pp: int = 1,
    vpp: int | None = None,
    cp: int = 1,
    sequence_parallel: bool | None = None,
    first_stage_layers: int = 0,
    last_stage_layers: int = 0,
    options: ModelOptions | None = None,
):
    """Megatron ``TransformerConfig`` for ``args`` under the given parallel sizes.

    Fusions are off unless ``options`` asks for Megatron's native SwiGLU or cross-entropy
    fusion, and weights are initialised on the CPU so that any split computes the same
    numbers as one process (the trainer loads the plain model's initial weights anyway).
    """
    from megatron.core.transformer.transformer_config import TransformerConfig

    options = options or ModelOptions()
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if options.bf16 else torch.float32
    return TransformerConfig(
        num_layers=args.n_layers,
        hidden_size=args.dim,
        num_attention_heads=args.n_heads,
        num_query_groups=args.kv_heads,
        kv_channels=args.head_dim,
        ffn_hidden_size=args.ffn_hidden_dim,
        normalization="RMSNorm",
        layernorm_epsilon=args.norm_eps,
        gated_linear_unit=True,
        activation_func=F.silu,
        add_bias_linear=False,
        add_qkv_bias=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        init_method_std=options.init_std,
        tensor_model_parallel_size=tp,
        pipeline_model_parallel_size=pp,
        virtual_pipeline_model_parallel_size=vpp if pp > 1 else None,
        num_layers_in_first_pipeline_stage=first_stage_layers or None,
        num_layers_in_last_pipeline_stage=last_stage_layers or None,
        context_parallel_size=cp,
        sequence_parallel=(tp > 1) if sequence_parallel is None else sequence_parallel,
        params_dtype=dtype,
        pipeline_dtype=dtype,
        bf16=options.bf16,
        autocast_dtype=dtype,
        use_cpu_initialization=not cuda,
        perform_initialization=True,
        bias_activation_fusion=options.fused_swiglu,
        cross_entropy_loss_fusion=options.fused_cross_entropy,
        cross_entropy_fusion_impl="native",
        masked_softmax_fusion=False,
        persist_layer_norm=False,
        bias_dropout_fusion=False,
        apply_rope_fusion=False,
        gradient_accumulation_fusion=False,
        calculate_per_token_loss=True,
        recompute_granularity="full" if options.activation_checkpointing else None,
        recompute_method="uniform" if options.activation_checkpointing else None,
        recompute_num_layers=1 if options.activation_checkpointing else None,
        deallocate_pipeline_outputs=True,
    )


def _gpt_model_class():
    from megatron.core import tensor_parallel
    from megatron.core.models.gpt import GPTModel

    from l3_core.parallel.megatron_adapter import HiddenOutputMixin

    class LlamaGPTModel(HiddenOutputMixin, GPTModel):
        """GPTModel that takes per-token positions and document ids (see parallel.attention).

        With an ``output_head`` module set (an objective's head), the last stage returns
        ``output_head(hidden states [b, s, dim])`` after the final norm instead of logits.
        """

        def forward(self, input_ids, position_ids, document_ids=None, labels=None):
            self.rotary_pos_emb.positions = position_ids
            return super().forward(input_ids, None, document_ids, labels=labels)

        def returns_hidden_states(self) -> bool:
            return getattr(self, "output_head", None) is not None

        def output_from_hidden_states(self, hidden: torch.Tensor) -> torch.Tensor:
            if self.config.sequence_parallel:
                # The head runs whole on every TP rank, so each rank's gradient of its own
                # sequence slice is already complete: split it back, do not sum it.
                hidden = tensor_parallel.gather_from_sequence_parallel_region(
                    hidden, tensor_parallel_output_grad=False
                )
            return self.output_head(hidden.transpose(0, 1))

    return LlamaGPTModel


def build_model_chunks(
    args: ModelArgs,
    config,
    head: torch.nn.Module | None = None,
) -> list[torch.nn.Module]:
    """This rank's model chunks (one per virtual pipeline stage), not yet wrapped by DDP;
    ``head`` becomes the ``output_head`` of the chunk that holds the last stage."""
    from megatron.core import parallel_state as ps

    cls = _gpt_model_class()
    vpp = config.virtual_pipeline_model_parallel_size or 1
    chunks = []
    for vp in range(vpp):
        vp_stage = vp if vpp > 1 else None
        model = cls(
            config=config,
            transformer_layer_spec=llama_block_spec(config, vp_stage),
            vocab_size=args.vocab_size,
            max_sequence_length=args.max_seq_len,
            pre_process=ps.is_pipeline_first_stage(ignore_virtual=False, vp_stage=vp_stage),
            post_process=ps.is_pipeline_last_stage(ignore_virtual=False, vp_stage=vp_stage),
            parallel_output=True,
            share_embeddings_and_output_weights=args.tie_embeddings,
            position_embedding_type="rope",
            rotary_base=int(args.rope_theta),
            vp_stage=vp_stage,
        )
        model.rotary_pos_emb = PositionRotary(args)
        if head is not None and model.post_process:
            model.output_head = head
        chunks.append(model)
    return chunks
