# SPDX-License-Identifier: MIT
"""Speech input for IVR menus: voice-activity endpointing and offline phrase recognition.

``endpointing`` is pure Python and cheap; ``recognizer`` imports pocketsphinx,
so it is not imported here: ``from acd.speech.recognizer import PhraseRecognizer``.
"""
