"""Estimators: what each partition computes, and how merged statistics become estimates."""
